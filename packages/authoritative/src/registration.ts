import {
  CsiError,
  DEFAULT_APEX,
  DNSSEC_ALGORITHM_ED25519,
  MAX_CLOCK_SKEW_SECONDS,
  SignedObjectError,
  canonicalName,
  createAttestation,
  csiToName,
  decodeMapping,
  encodeAttestation,
  namesEqual,
  parentName,
  parseCsi,
  record,
  silentLogger,
  verifyMapping,
  verifyMaprefRequest,
  verifyRemoval,
  verifyRevocation,
  type Attestation,
  type AuthkeyData,
  type AuthkeyRole,
  type Csi,
  type Logger,
  type Mapping,
  type VerifyResult,
} from '@mimi-discovery/common';
import { LRUCache } from 'lru-cache';
import { selectChannel, type CodeChannels } from './channels.js';
import { createCodeTable, type CodeTable } from './codes.js';
import {
  MAX_ATTEMPTS_PER_CODE,
  MAX_RATE_LIMIT_KEYS,
  REQUESTS_PER_CLIENT_PER_MINUTE,
  SENDS_PER_CSI_PER_HOUR,
  createTokenBuckets,
  type TokenBuckets,
} from './rate-limit.js';
import { RegistrationError, type RegistrationErrorCode } from './registration-error.js';
import type { DiscoveryStore, RRsetChange } from './store.js';

/**
 * The registration logic of a Discovery Provider (design §8), independent of HTTP:
 *
 * 1. `prove`: a one-time code goes to the CSI through a channel (channels.ts, codes.ts).
 * 2. `confirm`: the right code and a public key get an Attestation signed by the DP's prover
 *    key (`store.proverKey()`), valid from now for `attestationValiditySeconds`.
 * 3. `publishMapping`, `publishMapref`: signed objects are verified as far as the DP can
 *    (design §6) and stored; `store.apply` resolves only once the change is durable.
 * 4. `remove` (recipient) and `revoke` (CSIP) delete what they cover (R9, R10).
 *
 * Pending codes live in memory (codes.ts) and do not survive a restart: they last minutes, and
 * nothing acknowledged is lost (the owner asks for a new code). Attestations, mappings and
 * MAPREFs are in the store, written durably before a request is acknowledged.
 *
 * Every refusal is a {@link RegistrationError} with a stable code, thrown before anything is
 * written: bad input leaves the store unchanged. Changes to one CSI name are serialized, so
 * two requests for the same CSI never overwrite each other's read-modify-write.
 *
 * Rules for a CSI's MAP RRset (one MAP record per recipient key):
 * - a key's new mapping replaces its stored one only with a higher `seq` (else `ERR_STALE_SEQ`;
 *   the very same bytes again succeed without a change, so a client may retry);
 * - a mapping with the "new" bit de-lists, i.e. deletes, the mappings of other keys whose
 *   attestation is older (`att.nbf` smaller); conversely a mapping whose attestation is older
 *   than that of another key's stored "new" mapping is refused (`ERR_SUPERSEDED`), since
 *   resolvers would drop it (design §6);
 * - mappings that have expired (own or attestation `exp`) are dropped whenever the RRset is
 *   rewritten;
 * - the RRset's TTL is the smallest over its records of min({@link MAX_MAP_TTL_SECONDS},
 *   expiry − now), so no cache keeps a mapping past its expiry.
 *
 * Rules for the MAPREF RRset: a MAPREF belongs to the CSI, not to one key (its RDATA is only
 * a domain name). A MapRef request from any current holder (a key attested by a prover of the
 * range, not de-listed by a "new" mapping, not revoked) adds its `target`, or with `target`
 * null withdraws the whole RRset. A Removal that leaves no MAP at the CSI deletes the MAPREF
 * RRset too (the last holder has left, so nothing vouches for the pointers); a Revocation
 * always deletes it, since the pointers may have been set by the revoked holder.
 *
 * Replays. Published mappings are public, so after a removal or revocation anyone could send
 * an old mapping again. The registrar remembers, per CSI and key, the highest removed `seq`
 * and, per CSI, the latest revocation's `before`, until the removed objects expire, and
 * refuses what they cover. MapRef requests are accepted only within MAX_CLOCK_SKEW_SECONDS of
 * their `iat`, and each at most once in that window. These memories are in-process (bounded by
 * {@link MAX_TOMBSTONES} and {@link MAX_REPLAY_ENTRIES}) and do not survive a restart; the
 * store contract has no place for them yet.
 */

/** Longest TTL of a MAP RRset, in seconds; shorter when a mapping expires sooner. */
export const MAX_MAP_TTL_SECONDS = 300;
/** TTL of a MAPREF RRset, in seconds. */
export const MAPREF_TTL_SECONDS = 300;
/** Default validity of an attestation issued by `confirm`: 365 days. */
export const ATTESTATION_VALIDITY_SECONDS = 365 * 86_400;
/** Most MAP records (recipient keys) at one CSI. */
export const MAX_MAPPINGS_PER_CSI = 16;
/**
 * Most RDATA octets of one MAP RRset, so an answer with its RRSIG fits a DNS message (65,535
 * octets) with room to spare.
 */
export const MAX_MAP_RRSET_OCTETS = 32 * 1024;
/** Most MAPREF records at one CSI (a resolver follows only a few: design §6 fan-out limit). */
export const MAX_MAPREFS_PER_CSI = 8;
/** Most removals and revocations remembered against replays. */
export const MAX_TOMBSTONES = 100_000;
/** Most MapRef request signatures remembered against replays. */
export const MAX_REPLAY_ENTRIES = 100_000;

/** Limits and lifetimes of a registrar; each defaults to the named constant. */
export interface RegistrarLimits {
  /** Default {@link SENDS_PER_CSI_PER_HOUR}. */
  readonly sendsPerCsiPerHour?: number;
  /** Default {@link REQUESTS_PER_CLIENT_PER_MINUTE}. */
  readonly requestsPerClientPerMinute?: number;
  /** Default {@link MAX_ATTEMPTS_PER_CODE}. */
  readonly maxAttemptsPerCode?: number;
  /** Default `CODE_TTL_SECONDS` (600). */
  readonly codeTtlSeconds?: number;
  /** 6 to 8; default `CODE_DIGITS` (6). */
  readonly codeDigits?: number;
  /** Default `MAX_PENDING_CODES`. */
  readonly maxPendingCodes?: number;
  /** Default {@link MAX_RATE_LIMIT_KEYS}. */
  readonly maxRateLimitKeys?: number;
  /** Default {@link ATTESTATION_VALIDITY_SECONDS}. */
  readonly attestationValiditySeconds?: number;
}

/** Components and settings of {@link createRegistrar}. */
export interface RegistrarOptions {
  readonly store: DiscoveryStore;
  readonly channels: CodeChannels;
  /** The clock, seconds since the epoch; default the system clock. */
  readonly now?: () => number;
  readonly log?: Logger;
  readonly limits?: RegistrarLimits;
  /** The namespace apex; default `mimi.arpa`. */
  readonly apex?: string;
  /** A uniform random integer in [0, max) for codes; default `crypto.randomInt`. */
  readonly randomInt?: (max: number) => number;
}

/** What `prove` did. */
export interface ProveResult {
  /** The canonical CSI. */
  readonly csi: Csi;
  /** When the code expires, seconds since the epoch. */
  readonly expiresAt: number;
  /** The channel's name. */
  readonly channel: string;
}

/** The attestation issued by `confirm`. */
export interface ConfirmResult {
  readonly attestation: Attestation;
  /** The attestation's deterministic CBOR. */
  readonly encoded: Uint8Array;
  readonly prover: Uint8Array;
  readonly nbf: number;
  readonly exp: number;
}

/** Where a change was written. */
export interface PublishResult {
  readonly zone: string;
  /** The CSI's owner name. */
  readonly name: string;
  /** The zone's SOA serial after the change (unchanged when nothing had to change). */
  readonly serial: number;
}

/** What a revocation deleted. */
export interface RevokeResult extends PublishResult {
  /** MAP records deleted. */
  readonly removed: number;
}

/**
 * The registration logic. `client` identifies the requester for rate limiting (an address;
 * see `clientKeyOf`); when omitted, no per-client limit applies.
 */
export interface Registrar {
  /** Sends a code to the CSI (given as typed). */
  prove(input: { readonly csi: string }, client?: string): Promise<ProveResult>;
  /** Checks the code and issues an attestation binding the CSI to `key`. */
  confirm(
    input: { readonly csi: string; readonly code: string; readonly key: Uint8Array },
    client?: string,
  ): Promise<ConfirmResult>;
  /** Publishes an encoded Mapping. */
  publishMapping(mapping: Uint8Array, client?: string): Promise<PublishResult>;
  /** Applies an encoded MapRef request. */
  publishMapref(request: Uint8Array, client?: string): Promise<PublishResult>;
  /** Applies an encoded Removal. */
  remove(removal: Uint8Array, client?: string): Promise<PublishResult>;
  /** Applies an encoded Revocation. */
  revoke(revocation: Uint8Array, client?: string): Promise<RevokeResult>;
}

/** A MAP record as stored, decoded when it decodes. */
interface StoredMapping {
  readonly bytes: Uint8Array;
  /** Undefined for a record this version cannot decode: kept as is, never judged. */
  readonly mapping: Mapping | undefined;
}

interface Located {
  readonly origin: string;
  readonly name: string;
}

interface RemovalTombstone {
  readonly seq: number;
  readonly until: number;
}

interface RevocationTombstone {
  readonly before: number;
  readonly until: number;
}

/** Creates a registrar over a store and code channels. */
export function createRegistrar(options: RegistrarOptions): Registrar {
  const { store, channels } = options;
  const limits = options.limits ?? {};
  const apex = options.apex ?? DEFAULT_APEX;
  const log = options.log ?? silentLogger;
  const systemClock = (): number => Date.now() / 1000;
  const readClock = options.now ?? systemClock;
  const clock = (): number => Math.floor(readClock());
  const validity = limits.attestationValiditySeconds ?? ATTESTATION_VALIDITY_SECONDS;
  const maxKeys = limits.maxRateLimitKeys ?? MAX_RATE_LIMIT_KEYS;

  const codes: CodeTable = createCodeTable({
    now: clock,
    ...(limits.codeTtlSeconds === undefined ? {} : { ttlSeconds: limits.codeTtlSeconds }),
    ...(limits.codeDigits === undefined ? {} : { digits: limits.codeDigits }),
    maxAttempts: limits.maxAttemptsPerCode ?? MAX_ATTEMPTS_PER_CODE,
    ...(limits.maxPendingCodes === undefined ? {} : { maxEntries: limits.maxPendingCodes }),
    ...(options.randomInt === undefined ? {} : { randomInt: options.randomInt }),
  });
  const sends: TokenBuckets = createTokenBuckets({
    capacity: limits.sendsPerCsiPerHour ?? SENDS_PER_CSI_PER_HOUR,
    windowSeconds: 3600,
    maxKeys,
    now: readClock,
  });
  const requests: TokenBuckets = createTokenBuckets({
    capacity: limits.requestsPerClientPerMinute ?? REQUESTS_PER_CLIENT_PER_MINUTE,
    windowSeconds: 60,
    maxKeys,
    now: readClock,
  });
  const removals = new LRUCache<string, RemovalTombstone>({ max: MAX_TOMBSTONES });
  const revocations = new LRUCache<string, RevocationTombstone>({ max: MAX_TOMBSTONES });
  const seenRequests = new LRUCache<string, number>({ max: MAX_REPLAY_ENTRIES });
  const withLock = createLocks();

  // -------------------------------------------------------------------------------------------
  // Checks shared by the operations

  const admit = (client: string | undefined): void => {
    if (client === undefined) return;
    const taken = requests.take(client);
    if (!taken.ok) {
      log.info('rate-limited', { limit: 'client', client });
      throw new RegistrationError('ERR_RATE_LIMITED', undefined, {
        detail: 'client',
        retryAfter: taken.retryAfter,
      });
    }
  };

  /** A CSI as typed by a person, made canonical. */
  const typedCsi = (input: unknown): Csi => {
    if (typeof input !== 'string') {
      throw new RegistrationError('ERR_BAD_REQUEST', 'csi must be a string', { detail: 'csi' });
    }
    try {
      return parseCsi(input);
    } catch (error) {
      if (error instanceof CsiError) {
        throw new RegistrationError('ERR_CSI_INVALID', error.message, {
          detail: error.code,
          cause: error,
        });
      }
      throw error;
    }
  };

  /** The CSI of a signed object, which must already be canonical: it is what was signed. */
  const signedCsi = (csi: string, field: string): Csi => {
    const canonical = typedCsi(csi);
    if (canonical !== csi) {
      throw new RegistrationError(
        'ERR_CSI_INVALID',
        `${field} is not in canonical form (it would be ${canonical})`,
        { detail: 'ERR_CSI_NOT_CANONICAL' },
      );
    }
    return canonical;
  };

  /**
   * The zone of this store that is authoritative for the CSI's name: the most specific zone
   * holding the name, unless the name is at or below a delegation inside that zone (a
   * sub-range served by another DP).
   */
  const locate = (csi: Csi): Located => {
    let name: string;
    try {
      name = csiToName(csi, apex);
    } catch (error) {
      if (error instanceof CsiError) {
        throw new RegistrationError('ERR_CSI_INVALID', error.message, { detail: error.code });
      }
      throw error;
    }
    const origin = store.findZone(name);
    if (origin === undefined) throw new RegistrationError('ERR_NOT_AUTHORITATIVE');
    const top = canonicalName(origin);
    for (let n: string | undefined = name; n !== undefined && canonicalName(n) !== top;) {
      if (store.readRRset(origin, n, 'NS').length > 0) {
        throw new RegistrationError(
          'ERR_NOT_AUTHORITATIVE',
          'the CSI is in a sub-range delegated to another provider',
        );
      }
      n = parentName(n);
    }
    return { origin, name };
  };

  /** Unexpired AUTHKEY entries of `role` at the zone's apex. */
  const authkeys = (origin: string, role: AuthkeyRole, now: number): AuthkeyData[] =>
    store
      .readRRset(origin, origin, 'AUTHKEY')
      .flatMap((r) => (r.type === 'AUTHKEY' ? [r.data] : []))
      .filter(
        (k) => k.role === role && k.algorithm === DNSSEC_ALGORITHM_ED25519 && k.notAfter > now,
      );

  const isAuthorized = (origin: string, role: AuthkeyRole, key: Uint8Array, now: number) =>
    authkeys(origin, role, now).some((k) => equalBytes(k.publicKey, key));

  const requireProver = (origin: string, att: Attestation, now: number): void => {
    if (!isAuthorized(origin, 'prover', att.prover, now)) {
      throw new RegistrationError('ERR_PROVER_NOT_AUTHORIZED');
    }
  };

  const invalid = (
    code: RegistrationErrorCode,
    result: Extract<VerifyResult<unknown>, { ok: false }>,
  ): RegistrationError => new RegistrationError(code, result.detail, { detail: result.reason });

  const readMappings = (origin: string, name: string): StoredMapping[] =>
    store
      .readRRset(origin, name, 'MAP')
      .flatMap((r) => (r.type === 'MAP' ? [{ bytes: r.data, mapping: tryDecode(r.data) }] : []));

  const hasMaprefs = (origin: string, name: string): boolean =>
    store.readRRset(origin, name, 'MAPREF').length > 0;

  const apply = async (origin: string, changes: RRsetChange[]): Promise<number> => {
    if (changes.length === 0) return store.zoneInfo(origin)?.serial ?? 0;
    return (await store.apply(origin, changes)).serial;
  };

  /** The MAP RRset change that leaves exactly `kept` at `name`. */
  const mapChange = (name: string, kept: StoredMapping[], now: number): RRsetChange => {
    if (kept.length === 0) return { op: 'delete', name, type: 'MAP' };
    const ttl = Math.min(...kept.map((k) => mapTtl(k.mapping, now)));
    return {
      op: 'put',
      name,
      type: 'MAP',
      records: kept.map((k) => record(name, 'MAP', k.bytes, ttl)),
    };
  };

  /** Refuses an object of `key` attested at `nbf` that a revocation or "new" mapping covers. */
  const requireCurrentHolder = (
    csi: Csi,
    key: Uint8Array,
    nbf: number,
    stored: StoredMapping[],
    now: number,
  ): void => {
    const revoked = revocations.get(csi);
    if (revoked !== undefined && revoked.until > now && nbf < revoked.before) {
      throw new RegistrationError('ERR_REVOKED');
    }
    const newer = stored.some(
      ({ mapping: o }) =>
        o !== undefined && isCurrent(o, now) && o.new && !equalBytes(o.key, key) && o.att.nbf > nbf,
    );
    if (newer) throw new RegistrationError('ERR_SUPERSEDED');
  };

  // -------------------------------------------------------------------------------------------
  // Operations

  return {
    async prove(input, client) {
      admit(client);
      const csi = typedCsi(input.csi);
      const { origin } = locate(csi);
      const channel = selectChannel(channels, csi);
      if (channel === undefined) throw new RegistrationError('ERR_CHANNEL_UNAVAILABLE');
      const taken = sends.take(csi);
      if (!taken.ok) {
        log.info('rate-limited', { limit: 'csi-sends', zone: origin });
        throw new RegistrationError('ERR_RATE_LIMITED', undefined, {
          detail: 'csi',
          retryAfter: taken.retryAfter,
        });
      }
      const { code, expiresAt } = codes.issue(csi);
      try {
        await channel.send({ csi, code, expiresAt });
      } catch (error) {
        codes.discard(csi, code);
        log.warn('code-not-sent', { zone: origin, channel: channel.name, error });
        throw new RegistrationError('ERR_CHANNEL_FAILED', undefined, {
          detail: channel.name,
          cause: error,
        });
      }
      log.info('code-sent', { zone: origin, channel: channel.name });
      return { csi, expiresAt, channel: channel.name };
    },

    async confirm(input, client) {
      admit(client);
      const csi = typedCsi(input.csi);
      const { origin } = locate(csi);
      if (!(input.key instanceof Uint8Array) || input.key.length !== 32) {
        throw new RegistrationError('ERR_BAD_REQUEST', 'key must be 32 octets (Ed25519)', {
          detail: 'key',
        });
      }
      if (typeof input.code !== 'string') {
        throw new RegistrationError('ERR_BAD_REQUEST', 'code must be a string', {
          detail: 'code',
        });
      }
      // People type codes with spaces or dashes; anything else simply does not match.
      const checked = codes.check(csi, input.code.replace(/[\s-]/g, ''));
      switch (checked.kind) {
        case 'ok':
          break;
        case 'expired':
          throw new RegistrationError('ERR_CODE_EXPIRED');
        case 'too-many-attempts':
          throw new RegistrationError('ERR_TOO_MANY_ATTEMPTS');
        case 'none':
          throw new RegistrationError('ERR_CODE_INVALID', 'no code is pending for this CSI');
        case 'invalid':
          throw new RegistrationError(
            'ERR_CODE_INVALID',
            `the code is not valid for this CSI; ${checked.attemptsLeft} attempts left`,
          );
      }
      const now = clock();
      const prover = store.proverKey();
      // An attestation is useful only while its prover is listed at the apex.
      const listed = authkeys(origin, 'prover', now).filter((k) =>
        equalBytes(k.publicKey, prover.publicKey),
      );
      if (listed.length === 0) log.warn('prover-not-listed', { zone: origin });
      const exp = Math.min(now + validity, ...listed.map((k) => k.notAfter));
      const attestation = createAttestation(
        { csi, key: input.key, nbf: now, exp },
        prover.secretKey,
      );
      log.info('attestation-issued', { zone: origin });
      return {
        attestation,
        encoded: encodeAttestation(attestation),
        prover: attestation.prover,
        nbf: attestation.nbf,
        exp: attestation.exp,
      };
    },

    async publishMapping(bytes, client) {
      admit(client);
      const decoded = decodeOrRefuse(bytes);
      const csi = signedCsi(decoded.csi, 'mapping.csi');
      const { origin, name } = locate(csi);
      const now = clock();
      const verified = verifyMapping(bytes, { csi, now });
      if (!verified.ok) throw invalid('ERR_MAPPING_INVALID', verified);
      const m = verified.value;
      requireProver(origin, m.att, now);
      return withLock(name, async () => {
        const removed = removals.get(tombstoneKey(csi, m.key));
        if (removed !== undefined && removed.until > now && m.seq <= removed.seq) {
          throw new RegistrationError(
            'ERR_STALE_SEQ',
            `a removal of this key covers seq ${removed.seq}`,
          );
        }
        const stored = readMappings(origin, name);
        const own = stored.find((s) => s.mapping !== undefined && equalBytes(s.mapping.key, m.key));
        if (own?.mapping !== undefined) {
          if (equalBytes(own.bytes, bytes)) {
            return { zone: origin, name, serial: await apply(origin, []) };
          }
          if (own.mapping.seq >= m.seq) {
            throw new RegistrationError(
              'ERR_STALE_SEQ',
              `the stored mapping of this key has seq ${own.mapping.seq}`,
            );
          }
        }
        requireCurrentHolder(csi, m.key, m.att.nbf, stored, now);
        const kept = stored.filter(({ mapping: o }) => {
          if (o === undefined) return true;
          if (equalBytes(o.key, m.key)) return false;
          if (!isCurrent(o, now)) return false;
          // Design §4/§6: the "new" bit de-lists other keys attested earlier.
          return !(m.new && o.att.nbf < m.att.nbf);
        });
        const all = [...kept, { bytes: Uint8Array.from(bytes), mapping: m }];
        if (all.length > MAX_MAPPINGS_PER_CSI) {
          throw new RegistrationError(
            'ERR_TOO_MANY_MAPPINGS',
            `a CSI holds at most ${MAX_MAPPINGS_PER_CSI} mappings`,
          );
        }
        if (all.reduce((n, s) => n + s.bytes.length, 0) > MAX_MAP_RRSET_OCTETS) {
          throw new RegistrationError(
            'ERR_TOO_MANY_MAPPINGS',
            `the mappings of a CSI take at most ${MAX_MAP_RRSET_OCTETS} octets`,
          );
        }
        const serial = await apply(origin, [mapChange(name, all, now)]);
        log.info('mapping-published', {
          zone: origin,
          serial,
          delisted: stored.length - kept.length - (own === undefined ? 0 : 1),
        });
        return { zone: origin, name, serial };
      });
    },

    async publishMapref(bytes, client) {
      admit(client);
      const now = clock();
      const verified = verifyMaprefRequest(bytes, { now });
      if (!verified.ok) throw invalid('ERR_MAPREF_INVALID', verified);
      const r = verified.value;
      const csi = signedCsi(r.csi, 'mapref.csi');
      const { origin, name } = locate(csi);
      if (r.target !== null && namesEqual(r.target, name)) {
        throw new RegistrationError('ERR_MAPREF_INVALID', 'a MAPREF cannot point at its own name', {
          detail: 'target',
        });
      }
      requireProver(origin, r.att, now);
      const replayKey = Buffer.from(r.sig).toString('hex');
      return withLock(name, async () => {
        const seen = seenRequests.get(replayKey);
        if (seen !== undefined && seen >= now) throw new RegistrationError('ERR_REPLAYED');
        requireCurrentHolder(csi, r.key, r.att.nbf, readMappings(origin, name), now);
        const targets = store
          .readRRset(origin, name, 'MAPREF')
          .flatMap((rr) => (rr.type === 'MAPREF' ? [rr.data] : []));
        let changes: RRsetChange[];
        if (r.target === null) {
          changes = targets.length === 0 ? [] : [{ op: 'delete', name, type: 'MAPREF' }];
        } else if (targets.some((t) => namesEqual(t, r.target as string))) {
          changes = [];
        } else {
          if (targets.length >= MAX_MAPREFS_PER_CSI) {
            throw new RegistrationError(
              'ERR_TOO_MANY_MAPREFS',
              `a CSI holds at most ${MAX_MAPREFS_PER_CSI} MAPREF records`,
            );
          }
          const records = [...targets, r.target].map((t) =>
            record(name, 'MAPREF', t, MAPREF_TTL_SECONDS),
          );
          changes = [{ op: 'put', name, type: 'MAPREF', records }];
        }
        const serial = await apply(origin, changes);
        // Remembered until the request can no longer verify (iat + skew).
        seenRequests.set(replayKey, r.iat + MAX_CLOCK_SKEW_SECONDS);
        log.info('mapref-published', { zone: origin, serial, withdrawn: r.target === null });
        return { zone: origin, name, serial };
      });
    },

    async remove(bytes, client) {
      admit(client);
      const now = clock();
      const verified = verifyRemoval(bytes, { now });
      if (!verified.ok) throw invalid('ERR_REMOVAL_INVALID', verified);
      const removal = verified.value;
      const csi = signedCsi(removal.csi, 'removal.csi');
      const { origin, name } = locate(csi);
      return withLock(name, async () => {
        const stored = readMappings(origin, name);
        const own = stored.find(
          (s) => s.mapping !== undefined && equalBytes(s.mapping.key, removal.key),
        );
        // R10: only the key that published a mapping can remove it.
        if (own?.mapping === undefined) throw new RegistrationError('ERR_NOT_FOUND');
        if (own.mapping.seq > removal.seq) {
          throw new RegistrationError(
            'ERR_STALE_SEQ',
            `the stored mapping has seq ${own.mapping.seq}, above the removal's ${removal.seq}`,
          );
        }
        const kept = stored.filter(
          (s) => s !== own && (s.mapping === undefined || isCurrent(s.mapping, now)),
        );
        const changes: RRsetChange[] = [mapChange(name, kept, now)];
        if (kept.length === 0 && hasMaprefs(origin, name)) {
          changes.push({ op: 'delete', name, type: 'MAPREF' });
        }
        const serial = await apply(origin, changes);
        const until = Math.max(own.mapping.exp, own.mapping.att.exp);
        const key = tombstoneKey(csi, removal.key);
        const previous = removals.get(key);
        removals.set(key, {
          seq: Math.max(removal.seq, previous?.seq ?? 0),
          until: Math.max(until, previous?.until ?? 0),
        });
        log.info('mapping-removed', { zone: origin, serial });
        return { zone: origin, name, serial };
      });
    },

    async revoke(bytes, client) {
      admit(client);
      const now = clock();
      const verified = verifyRevocation(bytes, { now });
      if (!verified.ok) throw invalid('ERR_REVOCATION_INVALID', verified);
      const revocation = verified.value;
      const csi = signedCsi(revocation.csi, 'revocation.csi');
      const { origin, name } = locate(csi);
      if (!isAuthorized(origin, 'csip', revocation.csip, now)) {
        throw new RegistrationError('ERR_CSIP_NOT_AUTHORIZED');
      }
      // A revocation covers the past; a `before` in the future would also revoke the next
      // holder's attestations.
      if (revocation.before > now + MAX_CLOCK_SKEW_SECONDS) {
        throw new RegistrationError(
          'ERR_REVOCATION_INVALID',
          'revocation.before lies in the future',
          { detail: 'not-yet-valid' },
        );
      }
      return withLock(name, async () => {
        const stored = readMappings(origin, name);
        const covered = (m: Mapping | undefined): boolean =>
          m !== undefined && m.att.nbf < revocation.before;
        const kept = stored.filter(
          (s) => !covered(s.mapping) && (s.mapping === undefined || isCurrent(s.mapping, now)),
        );
        const removed = stored.filter((s) => covered(s.mapping)).length;
        const changes: RRsetChange[] = [];
        if (kept.length !== stored.length) changes.push(mapChange(name, kept, now));
        if (hasMaprefs(origin, name)) changes.push({ op: 'delete', name, type: 'MAPREF' });
        const serial = await apply(origin, changes);
        const previous = revocations.get(csi);
        revocations.set(csi, {
          before: Math.max(revocation.before, previous?.before ?? 0),
          until: Math.max(now + validity, previous?.until ?? 0),
        });
        log.info('revoked', { zone: origin, serial, removed });
        return { zone: origin, name, serial, removed };
      });
    },
  };
}

function decodeOrRefuse(bytes: Uint8Array): Mapping {
  try {
    return decodeMapping(bytes);
  } catch (error) {
    if (error instanceof SignedObjectError) {
      throw new RegistrationError('ERR_MAPPING_INVALID', error.message, {
        detail: 'malformed',
        cause: error,
      });
    }
    throw error;
  }
}

function tryDecode(bytes: Uint8Array): Mapping | undefined {
  try {
    return decodeMapping(bytes);
  } catch (error) {
    if (error instanceof SignedObjectError) return undefined;
    throw error;
  }
}

function isCurrent(m: Mapping, now: number): boolean {
  return now < m.exp && now < m.att.exp;
}

/** min(MAX_MAP_TTL_SECONDS, seconds until the mapping or its attestation expires), at least 1. */
function mapTtl(m: Mapping | undefined, now: number): number {
  if (m === undefined) return MAX_MAP_TTL_SECONDS;
  return Math.max(1, Math.min(MAX_MAP_TTL_SECONDS, Math.min(m.exp, m.att.exp) - now));
}

function tombstoneKey(csi: string, key: Uint8Array): string {
  return `${csi}\n${Buffer.from(key).toString('hex')}`;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Serializes work per key: `withLock(name, fn)` runs `fn` after every earlier `fn` of the same
 * name has settled. The table holds only names with work queued.
 */
function createLocks(): <T>(key: string, fn: () => Promise<T>) => Promise<T> {
  const tails = new Map<string, Promise<void>>();
  return async <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    const previous = tails.get(key) ?? Promise.resolve();
    let release: () => void = () => undefined;
    const done = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => done);
    tails.set(key, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (tails.get(key) === tail) tails.delete(key);
    }
  };
}
