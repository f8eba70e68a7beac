import {
  DNSSEC_ALGORITHM_ED25519,
  ED25519_PUBLIC_KEY_OCTETS,
  MimiError,
  canonicalName,
  silentLogger,
  systemClock,
  type AuthkeyData,
  type AuthkeyRole,
  type Clock,
  type Logger,
} from '@mimi-discovery/common';
import type { AuthkeyRef, OperationOutcome, StoreOperation } from '../store/mapping-ops.js';
import type { DiscoveryStore } from '../store/store.js';

/**
 * The keys authorized for a range (design §4: the apex AUTHKEY RRset — its provers, whose
 * attestations resolvers accept, and its CSIPs, whose revocations the DP accepts), managed one
 * key at a time through the store's operations (`add-authkeys`, `remove-authkeys`,
 * `renew-authkey` of `mapping-ops.ts`), each decided inside the write transaction. What
 * `mimi-discovery keys list|add-prover|remove-prover|add-csip|remove-csip|renew` calls, and
 * what the DP runs on its own to renew its prover key ({@link startAuthkeyRenewal}).
 *
 * Worked example: `+44` lists its own prover P (notAfter in 20 days) and CSIP C. With
 * `prover.renewBeforeDays` 30 and `authkeyValidityDays` 365, the DP's next check renews P to
 * now + 365 days; `keys add-prover --public-key Q` adds Q; `keys remove-prover --public-key Q`
 * deletes it again, and resolvers stop accepting Q's attestations once their copy of the RRset
 * expires (its TTL, config `authkeyTtl`, default 300 s).
 */

/** Default validity of this DP's prover AUTHKEY, from each renewal (config `prover`). */
export const DEFAULT_AUTHKEY_VALIDITY_DAYS = 365;
/** Default: the prover AUTHKEY is renewed when fewer than this many days remain. */
export const DEFAULT_AUTHKEY_RENEW_BEFORE_DAYS = 30;
/**
 * Longest validity given to an AUTHKEY by the CLI and the renewal: 10 years, what new zones
 * used to list their prover with. A key lasting longer cannot be rolled by its `notAfter`.
 */
export const MAX_AUTHKEY_VALIDITY_DAYS = 3650;
/** Largest TTL (RFC 2181 §8). */
export const MAX_TTL_SECONDS = 2 ** 31 - 1;
/**
 * How often a running DP checks whether its prover AUTHKEY is due for renewal. Renewal starts
 * `renewBeforeDays` (at least a day) before expiry, so a check every hour never misses it.
 */
export const AUTHKEY_RENEWAL_INTERVAL_MS = 60 * 60 * 1000;

const DAY = 86_400;

/** The codes of an {@link AuthkeyError}. */
export type AuthkeyErrorCode =
  /** No zone of the store is the given one. */
  | 'ERR_AUTHKEY_NO_ZONE'
  /** A public key that is not 32 octets, a validity out of range. */
  | 'ERR_AUTHKEY_BAD_KEY'
  /** The key to remove or renew is not listed. */
  | 'ERR_AUTHKEY_NOT_LISTED'
  /** Removing this DP's own prover key: it would refuse every registration of the zone. */
  | 'ERR_AUTHKEY_OWN_PROVER';

/** A change of the AUTHKEY RRset that cannot be made; nothing was written. */
export class AuthkeyError extends MimiError<AuthkeyErrorCode> {}

/** One listed AUTHKEY. */
export interface ListedAuthkey {
  readonly role: AuthkeyRole;
  readonly algorithm: number;
  readonly publicKey: Uint8Array;
  readonly notAfter: number;
  /** Whether it is this DP's own prover key. */
  readonly own: boolean;
}

/** The apex AUTHKEY RRset of a zone. */
export interface AuthkeyListing {
  readonly zone: string;
  /** The RRset's TTL; undefined when the zone lists no key. */
  readonly ttl: number | undefined;
  readonly keys: readonly ListedAuthkey[];
}

/** What a change did. */
export interface AuthkeyChange {
  readonly zone: string;
  /** The zone's SOA serial after the change. */
  readonly serial: number;
  /** False when the RRset already was as asked (a key already listed, the same renewal). */
  readonly changed: boolean;
}

/** The zone of `store` named `zone` (any case, trailing dot or not), or `ERR_AUTHKEY_NO_ZONE`. */
function zoneOf(store: Pick<DiscoveryStore, 'listZones'>, zone: string): string {
  const origin = canonicalName(zone);
  const zones = store.listZones();
  if (!zones.includes(origin)) {
    throw new AuthkeyError(
      'ERR_AUTHKEY_NO_ZONE',
      `the store holds no zone ${origin}${zones.length > 0 ? ` (it holds ${zones.join(', ')})` : ''}`,
    );
  }
  return origin;
}

/** The AUTHKEY RRset at the apex of `zone`. */
export function listAuthkeys(
  store: Pick<DiscoveryStore, 'listZones' | 'readRRset' | 'proverKey'>,
  zone: string,
): AuthkeyListing {
  const origin = zoneOf(store, zone);
  const own = store.proverKey().publicKey;
  const rrset = store
    .readRRset(origin, origin, 'AUTHKEY')
    .flatMap((rr) => (rr.type === 'AUTHKEY' ? [rr] : []));
  return {
    zone: origin,
    ttl: rrset[0]?.ttl,
    keys: rrset.map(({ data }) => ({
      role: data.role,
      algorithm: data.algorithm,
      publicKey: data.publicKey,
      notAfter: data.notAfter,
      own: data.role === 'prover' && equalBytes(data.publicKey, own),
    })),
  };
}

/** How long a key added or renewed lasts, and the TTL the RRset gets. */
export interface AuthkeyWriteOptions {
  /** Seconds since the epoch; default the system clock. */
  readonly now?: number;
  /** The AUTHKEY RRset's TTL after the write (config `authkeyTtl`); default unchanged. */
  readonly ttl?: number;
}

/**
 * Adds a key (an independent prover or a CSIP) to the zone's AUTHKEY RRset, valid until
 * `notAfter`. A key already listed with that role stays as it is (`changed: false`; renew it to
 * change its `notAfter`). The RRset's TTL becomes the lower of its own and `options.ttl`
 * (`add-authkeys`, as `zone import` adds keys).
 */
export async function addAuthkey(
  store: Pick<DiscoveryStore, 'listZones' | 'applyOperation'>,
  zone: string,
  key: { readonly role: AuthkeyRole; readonly publicKey: Uint8Array; readonly notAfter: number },
  options: AuthkeyWriteOptions = {},
): Promise<AuthkeyChange> {
  const origin = zoneOf(store, zone);
  checkPublicKey(key.publicKey);
  const now = options.now ?? systemClock();
  if (!Number.isInteger(key.notAfter) || key.notAfter <= now || key.notAfter > 2 ** 32 - 1) {
    throw new AuthkeyError(
      'ERR_AUTHKEY_BAD_KEY',
      'notAfter must lie after now and before 2106 (seconds since the epoch, 32 bits)',
    );
  }
  const data: AuthkeyData = {
    role: key.role,
    algorithm: DNSSEC_ALGORITHM_ED25519,
    publicKey: key.publicKey,
    notAfter: key.notAfter,
  };
  const operation: StoreOperation = {
    kind: 'add-authkeys',
    keys: [data],
    ...(options.ttl === undefined ? {} : { ttl: options.ttl }),
  };
  return applied(origin, await store.applyOperation(origin, operation));
}

/**
 * Removes a key from the zone's AUTHKEY RRset. Refuses (`ERR_AUTHKEY_OWN_PROVER`) this DP's own
 * prover key — the DP could no longer attest anything — and (`ERR_AUTHKEY_NOT_LISTED`) a key
 * the RRset does not hold, also when another writer removed it first.
 */
export async function removeAuthkey(
  store: Pick<DiscoveryStore, 'listZones' | 'applyOperation' | 'proverKey'>,
  zone: string,
  key: AuthkeyRef,
  options: AuthkeyWriteOptions = {},
): Promise<AuthkeyChange> {
  const origin = zoneOf(store, zone);
  checkPublicKey(key.publicKey);
  if (key.role === 'prover' && equalBytes(key.publicKey, store.proverKey().publicKey)) {
    throw new AuthkeyError(
      'ERR_AUTHKEY_OWN_PROVER',
      "this is the DP's own prover key: removing it would refuse every registration of the zone (renew it instead)",
    );
  }
  const operation: StoreOperation = {
    kind: 'remove-authkeys',
    keys: [key],
    ...(options.ttl === undefined ? {} : { ttl: options.ttl }),
  };
  return applied(origin, await store.applyOperation(origin, operation));
}

/**
 * Renews this DP's prover AUTHKEY: `notAfter` becomes now + `validityDays` (which may shorten a
 * key listed for longer: the operator's policy is what counts). `ERR_AUTHKEY_NOT_LISTED` when
 * the zone does not list the DP's prover key (an operator removed it by a zone edit).
 */
export async function renewProverAuthkey(
  store: Pick<DiscoveryStore, 'listZones' | 'applyOperation' | 'proverKey'>,
  zone: string,
  options: AuthkeyWriteOptions & { readonly validityDays: number },
): Promise<AuthkeyChange & { readonly notAfter: number }> {
  const origin = zoneOf(store, zone);
  const days = options.validityDays;
  if (!Number.isInteger(days) || days < 1 || days > MAX_AUTHKEY_VALIDITY_DAYS) {
    throw new AuthkeyError(
      'ERR_AUTHKEY_BAD_KEY',
      `the validity must be 1 to ${MAX_AUTHKEY_VALIDITY_DAYS} days`,
    );
  }
  const now = options.now ?? systemClock();
  const notAfter = now + days * DAY;
  const operation: StoreOperation = {
    kind: 'renew-authkey',
    key: { role: 'prover', publicKey: store.proverKey().publicKey },
    notAfter,
    now,
    ...(options.ttl === undefined ? {} : { ttl: options.ttl }),
  };
  return { ...applied(origin, await store.applyOperation(origin, operation)), notAfter };
}

/**
 * Whether the DP's prover AUTHKEY of `listing` is due for renewal at `now`: listed, and
 * expiring within `renewBeforeDays` (or expired). Undefined when it is not listed at all.
 */
export function proverRenewalDue(
  listing: AuthkeyListing,
  now: number,
  renewBeforeDays: number,
): boolean | undefined {
  const own = listing.keys.find((k) => k.own);
  if (own === undefined) return undefined;
  return own.notAfter - now < renewBeforeDays * DAY;
}

/** What {@link startAuthkeyRenewal} needs. */
export interface AuthkeyRenewalComponents {
  readonly store: DiscoveryStore;
  /** Config `prover`. */
  readonly policy: { readonly authkeyValidityDays: number; readonly renewBeforeDays: number };
  /** Config `authkeyTtl`. */
  readonly ttl: number;
  readonly now?: Clock;
  readonly log?: Logger;
  /** Default {@link AUTHKEY_RENEWAL_INTERVAL_MS}. */
  readonly intervalMs?: number;
}

/** The DP's renewal of its prover AUTHKEY. */
export interface AuthkeyRenewal {
  /** Checks every zone now and renews where due; resolves with the zones renewed. */
  tick(): Promise<string[]>;
  /** Stops the timer and waits for a check that is running. */
  stop(): Promise<void>;
}

/**
 * Renews this DP's prover AUTHKEY in every zone of the store when it is due
 * ({@link proverRenewalDue}), once at start and then every `intervalMs`. A zone that does not
 * list the prover key is logged (once per start) and left alone: a removed key stays removed.
 * Several front ends of one PostgreSQL store may renew at once: each renewal is one
 * `renew-authkey` operation and the same `notAfter` twice changes nothing, so at worst the
 * serial moves twice.
 */
export function startAuthkeyRenewal(components: AuthkeyRenewalComponents): AuthkeyRenewal {
  const { store, policy, ttl } = components;
  const now = components.now ?? systemClock;
  const log = components.log ?? silentLogger;
  const unlisted = new Set<string>();
  let running: Promise<string[]> = Promise.resolve([]);
  let stopped = false;

  /** Renews in one zone when due; true when it did. Faults are logged, never thrown. */
  const renewZone = async (zone: string): Promise<boolean> => {
    try {
      const t = now();
      const due = proverRenewalDue(listAuthkeys(store, zone), t, policy.renewBeforeDays);
      if (due === undefined) {
        if (!unlisted.has(zone)) log.warn('prover-authkey-not-listed', { zone });
        unlisted.add(zone);
        return false;
      }
      if (!due) return false;
      const done = await renewProverAuthkey(store, zone, {
        now: t,
        ttl,
        validityDays: policy.authkeyValidityDays,
      });
      log.info('prover-authkey-renewed', { zone, serial: done.serial, notAfter: done.notAfter });
      return true;
    } catch (error) {
      // A zone removed meanwhile, a store closing, a write that failed: the next check retries.
      log.error('prover-authkey-renewal-failed', { zone, error });
      return false;
    }
  };
  const check = async (): Promise<string[]> => {
    const renewed: string[] = [];
    let zones: string[];
    try {
      zones = store.listZones();
    } catch (error) {
      log.error('prover-authkey-renewal-failed', { error });
      return renewed;
    }
    for (const zone of zones) {
      if (stopped) break;
      if (await renewZone(zone)) renewed.push(zone);
    }
    return renewed;
  };
  const tick = (): Promise<string[]> => {
    running = running.then(check);
    return running;
  };
  const timer = setInterval(() => {
    void tick();
  }, components.intervalMs ?? AUTHKEY_RENEWAL_INTERVAL_MS);
  timer.unref();
  return {
    tick,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running.catch(() => undefined);
    },
  };
}

function applied(origin: string, outcome: OperationOutcome): AuthkeyChange {
  if (outcome.kind === 'applied') {
    return { zone: origin, serial: outcome.serial, changed: outcome.changed };
  }
  if (outcome.reason === 'not-found') {
    throw new AuthkeyError('ERR_AUTHKEY_NOT_LISTED', outcome.message);
  }
  // The AUTHKEY operations refuse nothing else; a new reason is a fault of this module.
  throw new Error(`unexpected refusal of an AUTHKEY change: ${outcome.reason}`);
}

function checkPublicKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || key.length !== ED25519_PUBLIC_KEY_OCTETS) {
    throw new AuthkeyError(
      'ERR_AUTHKEY_BAD_KEY',
      `an AUTHKEY public key is ${ED25519_PUBLIC_KEY_OCTETS} octets (Ed25519)`,
    );
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
