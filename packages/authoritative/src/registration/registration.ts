import {
  CsiError,
  DEFAULT_APEX,
  DNSSEC_ALGORITHM_ED25519,
  SignedObjectError,
  canonicalName,
  checkPreferenceTags,
  createAttestation,
  csiToName,
  decodeCredentialRequest,
  encodeAttestation,
  issueSdJwtCredential,
  issueX509Credential,
  maprefTargetName,
  namesEqual,
  parentName,
  parseCsi,
  silentLogger,
  systemClock,
  verifyAttestation,
  verifyCredentialRequest,
  verifyMapping,
  verifyMaprefRequest,
  verifyRemoval,
  verifyRevocation,
  type Attestation,
  type AuthkeyRole,
  type Clock,
  type CredentialFormat,
  type CredentialRequest,
  type Csi,
  type Logger,
  type VerifyResult,
} from '@mimi-discovery/common';
import { selectChannel, type CodeChannels } from './channels.js';
import { createCodeTable, type CodeTable } from './codes.js';
import {
  MAX_ATTESTATION_LIFETIME_SECONDS,
  isAuthorizedKey,
  type OperationOutcome,
  type RefusalReason,
  type StoreOperation,
} from '../store/mapping-ops.js';
import {
  MAX_ATTEMPTS_PER_CODE,
  MAX_RATE_LIMIT_KEYS,
  REQUESTS_PER_CLIENT_PER_MINUTE,
  SENDS_PER_CSI_PER_HOUR,
  createTokenBuckets,
  type TokenBuckets,
} from './rate-limit.js';
import { RegistrationError, type RegistrationErrorCode } from './registration-error.js';
import type { RangeAuthkeyLookup } from './range-authkeys.js';
import type { DiscoveryStore } from '../store/store.js';
import type { RegistrationEvents } from '../metrics.js';

/**
 * The registration logic of a Discovery Provider (design §8), independent of HTTP:
 *
 * 1. `prove`: a one-time code goes to the CSI through a channel (channels.ts, codes.ts).
 * 2. `confirm`: the right code and a public key get an Attestation signed by the DP's prover
 *    key (`store.proverKey()`), valid from now for `attestationValiditySeconds`.
 * 3. `publishMapping`, `publishMapref`: signed objects are verified as far as the DP can
 *    (design §6) and handed to the store as one operation each. A Mapping does not carry its
 *    CSI (docs/protocol.md §4): the request names it, and the mapping is verified for it, so a
 *    mapping signed for another CSI is refused (`ERR_MAPPING_INVALID`, `bad-signature`).
 * 4. `remove` (recipient) and `revoke` (CSIP) delete what they cover (R9, R10), the same way.
 * 5. `credential`: an attestation this DP's prover issued is given back as an X.509 certificate
 *    or an SD-JWT (docs/protocol.md, "Credentials"), on a request signed by the attested key.
 *    Nothing is stored: the credential carries exactly the attestation's binding and validity.
 *
 * The split: this module checks what does not depend on the stored state — the signatures, the
 * times, the tag vocabulary of public entries (`checkPreferenceTags`), the CSI and the zone that
 * serves it, the prover or CSIP key against the apex AUTHKEYs
 * (a cheap early refusal, so a forged request never queues a write) — and then submits one
 * `StoreOperation` (`mapping-ops.ts`). The store decides the rest inside the write transaction
 * that commits it, on whichever thread or process holds the write: the per-key `seq` rule, the
 * "new" bit, removals, revocations, MAPREF targets, the limits, the anti-replay records, and the
 * prover or CSIP authorization once more (a key removed meanwhile cannot slip through). Nothing
 * here reads an RRset to write it back, so concurrent requests for one CSI — from this process,
 * another DP front end on the same store, or the CLI — never overwrite each other, and nothing
 * is acknowledged before it is durable. A refusal from the store comes back as a typed reason,
 * mapped here to its {@link RegistrationError} code.
 *
 * Replays. Published mappings are public, so after a removal or revocation anyone could send an
 * old mapping again; MapRef requests could be sent twice. The store keeps a record of each
 * removal (per CSI and key: the highest removed `seq`), revocation (per CSI: `before`) and
 * applied MapRef request, in the transaction of the change it records, until nothing it stops
 * could verify any more (`mapping-ops.ts` explains the bounds, which rest on
 * {@link MAX_ATTESTATION_LIFETIME_SECONDS}); they survive restarts and backups of the store.
 *
 * Pending codes live in memory (codes.ts) and do not survive a restart: they last minutes, and
 * nothing acknowledged is lost (the owner asks for a new code).
 *
 * MSP-run DPs (design §8, config `mspZone`, docs/protocol.md §9). A DP given `msp` takes
 * `publishMapping`, `remove` and `revoke` for a CSI outside its own ranges too: the object goes
 * to the MSP zone at the CSI's MAPREF-target name (`maprefTargetName(csi, zone)`), where the
 * CSI's range points its MAPREF. The key that vouches for it (the attestation's prover, the
 * revocation's CSIP key) must then be an unexpired AUTHKEY of the CSI's own range — never of the
 * MSP zone — fetched through the DP's validating resolver (`range-authkeys.ts`): a refusal names
 * that range's zone (`ERR_PROVER_NOT_AUTHORIZED`, `ERR_CSIP_NOT_AUTHORIZED`), and a resolver
 * that cannot vouch for the keys refuses the request (`ERR_PROVER_UNVERIFIABLE`, 503). The key
 * was checked here against the remote AUTHKEY RRset, before submit, so the operation goes to the
 * store with `authorize: false` (the MSP zone's own apex lists no key of that range); everything
 * else — seq, removals, revocations, the limits, the anti-replay records — the store decides as
 * for a CSI of its own range. A MAPREF belongs to the range, and the MSP-run DP proves nothing for
 * other ranges: `publishMapref`, `prove` and `confirm` of a foreign CSI stay
 * `ERR_NOT_AUTHORITATIVE`.
 *
 * Every refusal is a {@link RegistrationError} with a stable code; a refused request leaves the
 * store unchanged.
 */

/** Default validity of an attestation issued by `confirm`: 365 days. */
export const ATTESTATION_VALIDITY_SECONDS = 365 * 86_400;

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
  /**
   * Default {@link ATTESTATION_VALIDITY_SECONDS}; at most
   * {@link MAX_ATTESTATION_LIFETIME_SECONDS}, since the DP stores nothing attested for longer.
   */
  readonly attestationValiditySeconds?: number;
}

/** Components and settings of {@link createRegistrar}. */
export interface RegistrarOptions {
  readonly store: DiscoveryStore;
  readonly channels: CodeChannels;
  /**
   * The clock, whole seconds since the epoch, for codes, rate limits and attestations; default
   * `systemClock`.
   */
  readonly now?: Clock;
  readonly log?: Logger;
  readonly limits?: RegistrarLimits;
  /** The namespace apex; default `mimi.arpa`. */
  readonly apex?: string;
  /** A uniform random integer in [0, max) for codes; default `crypto.randomInt`. */
  readonly randomInt?: (max: number) => number;
  /** Random octets for SD-JWT disclosure salts; default `crypto.getRandomValues`. */
  readonly randomBytes?: (octets: number) => Uint8Array;
  /** Told of codes sent, channel failures and rate limits (the DP's metrics); default nobody. */
  readonly events?: RegistrationEvents;
  /**
   * An MSP-run DP's zone for CSIs outside its own ranges (config `mspZone.zone`), and the
   * lookup of those ranges' AUTHKEYs through the DP's resolver; default none: such CSIs are
   * refused `ERR_NOT_AUTHORITATIVE`.
   */
  readonly msp?: { readonly zone: string; readonly authkeys: RangeAuthkeyLookup };
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

/** A credential issued by `credential`. */
export interface CredentialResult {
  readonly format: CredentialFormat;
  /** X.509: the leaf certificate, PEM; SD-JWT: its compact serialization. */
  readonly credential: string;
  /** X.509: the prover certificate, PEM, derivable from the AUTHKEY. */
  readonly issuer?: string;
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
  /**
   * Publishes an encoded Mapping of `csi` (as typed; the mapping's signatures must cover its
   * canonical form).
   */
  publishMapping(
    input: { readonly csi: string; readonly mapping: Uint8Array },
    client?: string,
  ): Promise<PublishResult>;
  /** Applies an encoded MapRef request. */
  publishMapref(request: Uint8Array, client?: string): Promise<PublishResult>;
  /** Applies an encoded Removal. */
  remove(removal: Uint8Array, client?: string): Promise<PublishResult>;
  /** Applies an encoded Revocation. */
  revoke(revocation: Uint8Array, client?: string): Promise<RevokeResult>;
  /**
   * Issues the credential an encoded CredentialRequest asks for, for `csi` (as typed): stores
   * nothing.
   */
  credential(
    input: { readonly csi: string; readonly request: Uint8Array },
    client?: string,
  ): Promise<CredentialResult>;
}

interface Located {
  readonly origin: string;
  readonly name: string;
  /** The MSP zone at the CSI's MAPREF-target name: the CSI is of another DP's range. */
  readonly foreign: boolean;
}

/** Creates a registrar over a store and code channels. */
export function createRegistrar(options: RegistrarOptions): Registrar {
  const { store, channels } = options;
  const limits = options.limits ?? {};
  const apex = options.apex ?? DEFAULT_APEX;
  const log = options.log ?? silentLogger;
  const events = options.events;
  const clock = options.now ?? systemClock;
  const validity = limits.attestationValiditySeconds ?? ATTESTATION_VALIDITY_SECONDS;
  if (
    !Number.isSafeInteger(validity) ||
    validity <= 0 ||
    validity > MAX_ATTESTATION_LIFETIME_SECONDS
  ) {
    throw new RangeError(
      `attestationValiditySeconds must be whole seconds in 1..${MAX_ATTESTATION_LIFETIME_SECONDS}`,
    );
  }
  const maxKeys = limits.maxRateLimitKeys ?? MAX_RATE_LIMIT_KEYS;
  const randomBytes =
    options.randomBytes ??
    ((octets: number): Uint8Array => crypto.getRandomValues(new Uint8Array(octets)));

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
    now: clock,
  });
  const requests: TokenBuckets = createTokenBuckets({
    capacity: limits.requestsPerClientPerMinute ?? REQUESTS_PER_CLIENT_PER_MINUTE,
    windowSeconds: 60,
    maxKeys,
    now: clock,
  });

  // -------------------------------------------------------------------------------------------
  // Checks shared by the operations

  const admit = (client: string | undefined): void => {
    if (client === undefined) return;
    const taken = requests.take(client);
    if (taken.kind === 'limited') {
      log.info('rate-limited', { limit: 'client', client });
      events?.rateLimited('client');
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

  const named = (make: () => string): string => {
    try {
      return make();
    } catch (error) {
      if (error instanceof CsiError) {
        throw new RegistrationError('ERR_CSI_INVALID', error.message, { detail: error.code });
      }
      throw error;
    }
  };

  /** Whether `name` is at or below a delegation inside `origin` (a sub-zone served elsewhere). */
  const delegated = (origin: string, name: string): boolean => {
    const top = canonicalName(origin);
    for (let n: string | undefined = name; n !== undefined && canonicalName(n) !== top;) {
      if (store.readRRset(origin, n, 'NS').length > 0) return true;
      n = parentName(n);
    }
    return false;
  };

  const mspZone = options.msp === undefined ? undefined : canonicalName(options.msp.zone);

  /**
   * The zone of this store that is authoritative for the CSI's name: the most specific zone
   * holding the name, unless the name is at or below a delegation inside that zone (a
   * sub-range served by another DP). With `toMsp`, a CSI of no range of this DP goes to the MSP
   * zone (when there is one) at its MAPREF-target name.
   */
  const locate = (csi: Csi, toMsp: boolean): Located => {
    const name = named(() => csiToName(csi, apex));
    const origin = store.findZone(name);
    const own = origin !== undefined && !delegated(origin, name);
    if (own) return { origin, name, foreign: false };
    if (toMsp && mspZone !== undefined) {
      const target = named(() => maprefTargetName(csi, mspZone));
      if (store.findZone(target) === mspZone && !delegated(mspZone, target)) {
        return { origin: mspZone, name: target, foreign: true };
      }
    }
    if (origin === undefined) throw new RegistrationError('ERR_NOT_AUTHORITATIVE');
    throw new RegistrationError(
      'ERR_NOT_AUTHORITATIVE',
      'the CSI is in a sub-range delegated to another provider',
    );
  };

  /**
   * Checks that `key` is an unexpired AUTHKEY of `role` of the range of a foreign CSI, as the
   * DP's resolver validated it; refuses naming the range's zone.
   */
  const authorizeRemote = async (csi: Csi, role: AuthkeyRole, key: Uint8Array): Promise<void> => {
    const msp = options.msp as NonNullable<RegistrarOptions['msp']>;
    const { zone, authkeys } = await msp.authkeys.lookup(csi);
    if (isAuthorizedKey(authkeys, role, key, clock())) return;
    log.info('remote-key-refused', { zone, role });
    throw role === 'prover'
      ? new RegistrationError(
          'ERR_PROVER_NOT_AUTHORIZED',
          `the attestation is not by a prover listed in the AUTHKEY RRset of ${zone}, the CSI's range`,
        )
      : new RegistrationError(
          'ERR_CSIP_NOT_AUTHORIZED',
          `the key is not a CSIP listed in the AUTHKEY RRset of ${zone}, the CSI's range`,
        );
  };

  /** The notAfter of each unexpired AUTHKEY prover entry of `key` at the zone's apex. */
  const proverListings = (origin: string, key: Uint8Array, now: number): number[] =>
    store
      .readRRset(origin, origin, 'AUTHKEY')
      .flatMap((rr) => (rr.type === 'AUTHKEY' ? [rr.data] : []))
      .filter(
        (k) =>
          k.role === 'prover' &&
          k.algorithm === DNSSEC_ALGORITHM_ED25519 &&
          k.notAfter > now &&
          equalBytes(k.publicKey, key),
      )
      .map((k) => k.notAfter);

  /** The latest notAfter of `key` as an unexpired AUTHKEY prover at the zone's apex, if listed. */
  const listedProver = (origin: string, key: Uint8Array, now: number): number | undefined => {
    const listed = proverListings(origin, key, now);
    return listed.length === 0 ? undefined : Math.max(...listed);
  };

  /** Whether `key` is an unexpired AUTHKEY of `role` at the zone's apex (as read now). */
  const isAuthorized = (origin: string, role: AuthkeyRole, key: Uint8Array, now: number) =>
    isAuthorizedKey(store.readRRset(origin, origin, 'AUTHKEY'), role, key, now);

  const invalid = (
    code: RegistrationErrorCode,
    result: Extract<VerifyResult<unknown>, { kind: 'failed' }>,
  ): RegistrationError => new RegistrationError(code, result.detail, { detail: result.reason });

  /**
   * Submits one operation; a refusal becomes its RegistrationError (`invalidCode` for the
   * object's own faults: expiry, attestation lifetime, a revocation of the future).
   */
  const submit = async (
    origin: string,
    operation: StoreOperation,
    invalidCode: RegistrationErrorCode,
  ): Promise<Extract<OperationOutcome, { kind: 'applied' }>> => {
    const outcome = await store.applyOperation(origin, operation);
    if (outcome.kind === 'applied') return outcome;
    const code = REFUSALS[outcome.reason] ?? invalidCode;
    throw new RegistrationError(code, outcome.message, { detail: outcome.reason });
  };

  // -------------------------------------------------------------------------------------------
  // Operations

  return {
    async prove(input, client) {
      admit(client);
      const csi = typedCsi(input.csi);
      const { origin } = locate(csi, false);
      const channel = selectChannel(channels, csi);
      if (channel === undefined) throw new RegistrationError('ERR_CHANNEL_UNAVAILABLE');
      const taken = sends.take(csi);
      if (taken.kind === 'limited') {
        log.info('rate-limited', { limit: 'csi-sends', zone: origin });
        events?.rateLimited('csi');
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
        events?.channelFailed(channel.name);
        throw new RegistrationError('ERR_CHANNEL_FAILED', undefined, {
          detail: channel.name,
          cause: error,
        });
      }
      log.info('code-sent', { zone: origin, channel: channel.name });
      events?.codeSent(channel.name);
      return { csi, expiresAt, channel: channel.name };
    },

    async confirm(input, client) {
      admit(client);
      const csi = typedCsi(input.csi);
      const { origin } = locate(csi, false);
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
          events?.rateLimited('attempts');
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
      const listed = proverListings(origin, prover.publicKey, now);
      if (listed.length === 0) log.warn('prover-not-listed', { zone: origin });
      const exp = Math.min(now + validity, ...listed);
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

    async publishMapping(input, client) {
      admit(client);
      const csi = typedCsi(input.csi);
      const bytes = input.mapping;
      if (!(bytes instanceof Uint8Array)) {
        throw new RegistrationError('ERR_BAD_REQUEST', 'mapping must be bytes', {
          detail: 'mapping',
        });
      }
      const { origin, name, foreign } = locate(csi, true);
      const now = clock();
      // The signatures cover the canonical CSI of the request: a mapping made for another CSI
      // (copied from its name, or sent under the wrong one) fails here as bad-signature.
      const verified = verifyMapping(bytes, { csi, now });
      if (verified.kind === 'failed') throw invalid('ERR_MAPPING_INVALID', verified);
      // The tag vocabulary (docs/protocol.md §9): a DP serves no entry whose contexts or rank a
      // resolver would have to guess at, in its ranges and its MSP zone alike.
      verified.value.msps.forEach((entry, i) => {
        const problem = checkPreferenceTags(entry.tags);
        if (problem !== undefined) {
          throw new RegistrationError('ERR_MAPPING_INVALID', `msps[${i}].tags: ${problem}`, {
            detail: 'tags',
          });
        }
      });
      const prover = verified.value.att.prover;
      if (foreign) await authorizeRemote(csi, 'prover', prover);
      else if (!isAuthorized(origin, 'prover', prover, now)) {
        throw new RegistrationError(
          'ERR_PROVER_NOT_AUTHORIZED',
          `the attestation is not by a prover listed in the AUTHKEY RRset of ${origin}, the CSI's range`,
        );
      }
      const operation: StoreOperation = {
        kind: 'publish-mapping',
        name,
        csi,
        mapping: bytes,
        now,
        // A foreign CSI's prover was checked above against its own range's AUTHKEYs.
        authorize: !foreign,
      };
      const { serial, changed, removed } = await submit(origin, operation, 'ERR_MAPPING_INVALID');
      if (changed) log.info('mapping-published', { zone: origin, serial, delisted: removed });
      return { zone: origin, name, serial };
    },

    async publishMapref(bytes, client) {
      admit(client);
      const now = clock();
      const verified = verifyMaprefRequest(bytes, { now });
      if (verified.kind === 'failed') throw invalid('ERR_MAPREF_INVALID', verified);
      const r = verified.value;
      const csi = signedCsi(r.csi, 'mapref.csi');
      const { origin, name } = locate(csi, false);
      if (r.target !== null && namesEqual(r.target, name)) {
        throw new RegistrationError('ERR_MAPREF_INVALID', 'a MAPREF cannot point at its own name', {
          detail: 'target',
        });
      }
      if (!isAuthorized(origin, 'prover', r.att.prover, now)) {
        throw new RegistrationError('ERR_PROVER_NOT_AUTHORIZED');
      }
      const operation: StoreOperation = {
        kind: 'mapref',
        name,
        request: bytes,
        now,
        authorize: true,
      };
      const { serial } = await submit(origin, operation, 'ERR_MAPREF_INVALID');
      log.info('mapref-published', { zone: origin, serial, withdrawn: r.target === null });
      return { zone: origin, name, serial };
    },

    async remove(bytes, client) {
      admit(client);
      const now = clock();
      const verified = verifyRemoval(bytes, { now });
      if (verified.kind === 'failed') throw invalid('ERR_REMOVAL_INVALID', verified);
      const csi = signedCsi(verified.value.csi, 'removal.csi');
      const { origin, name } = locate(csi, true);
      const operation: StoreOperation = { kind: 'remove-mapping', name, removal: bytes, now };
      const { serial } = await submit(origin, operation, 'ERR_REMOVAL_INVALID');
      log.info('mapping-removed', { zone: origin, serial });
      return { zone: origin, name, serial };
    },

    async revoke(bytes, client) {
      admit(client);
      const now = clock();
      const verified = verifyRevocation(bytes, { now });
      if (verified.kind === 'failed') throw invalid('ERR_REVOCATION_INVALID', verified);
      const revocation = verified.value;
      const csi = signedCsi(revocation.csi, 'revocation.csi');
      const { origin, name, foreign } = locate(csi, true);
      if (foreign) await authorizeRemote(csi, 'csip', revocation.csip);
      else if (!isAuthorized(origin, 'csip', revocation.csip, now)) {
        throw new RegistrationError('ERR_CSIP_NOT_AUTHORIZED');
      }
      const operation: StoreOperation = {
        kind: 'revoke',
        name,
        revocation: bytes,
        now,
        // A foreign CSI's CSIP key was checked above against its own range's AUTHKEYs.
        authorize: !foreign,
      };
      const { serial, removed } = await submit(origin, operation, 'ERR_REVOCATION_INVALID');
      log.info('revoked', { zone: origin, serial, removed });
      return { zone: origin, name, serial, removed };
    },

    async credential(input, client) {
      admit(client);
      const csi = typedCsi(input.csi);
      const bytes = input.request;
      if (!(bytes instanceof Uint8Array)) {
        throw new RegistrationError('ERR_BAD_REQUEST', 'request must be bytes', {
          detail: 'request',
        });
      }
      // Only a range of this DP: its prover vouches for no other (an MSP zone proves nothing).
      const { origin } = locate(csi, false);
      let request: CredentialRequest;
      try {
        request = decodeCredentialRequest(bytes);
      } catch (error) {
        if (!(error instanceof SignedObjectError)) throw error;
        throw new RegistrationError('ERR_CREDENTIAL_REQUEST_INVALID', error.message, {
          detail: error.code === 'ERR_SIGNED_OBJECT_VERSION' ? 'unsupported-version' : 'malformed',
          cause: error,
        });
      }
      if (request.csi !== csi) {
        throw new RegistrationError(
          'ERR_CREDENTIAL_REQUEST_INVALID',
          'request.csi is not the canonical CSI of the request',
          { detail: 'csi-mismatch' },
        );
      }
      const now = clock();
      const attested = verifyAttestation(request.att, { csi, now });
      if (attested.kind === 'failed') throw invalid('ERR_CREDENTIAL_REQUEST_INVALID', attested);
      // The DP signs with its own prover key only, and only while the zone lists it.
      const prover = store.proverKey();
      const notAfter = listedProver(origin, prover.publicKey, now);
      if (!equalBytes(request.att.prover, prover.publicKey) || notAfter === undefined) {
        throw new RegistrationError(
          'ERR_PROVER_NOT_AUTHORIZED',
          `the attestation is not by this provider's prover, listed in the AUTHKEY RRset of ${origin}`,
        );
      }
      const verified = verifyCredentialRequest(bytes, { csi, now });
      if (verified.kind === 'failed') throw invalid('ERR_CREDENTIAL_REQUEST_INVALID', verified);
      const issue = {
        zone: origin,
        csi,
        attestation: request.att,
        prover: { secretKey: prover.secretKey, notAfter },
      };
      const result: CredentialResult =
        request.format === 'x509'
          ? { format: 'x509', ...(await issueX509Credential(issue)) }
          : { format: 'sd-jwt', credential: await issueSdJwtCredential(issue, randomBytes) };
      log.info('credential-issued', { zone: origin, format: request.format });
      events?.credentialIssued(request.format);
      return result;
    },
  };
}

/**
 * The RegistrationError code of each refusal the store may return; the reasons left out
 * (`expired`, `attestation-lifetime`, `not-yet-valid`) are faults of the submitted object and
 * take the code of its kind (`ERR_MAPPING_INVALID`, …).
 */
const REFUSALS: Readonly<Partial<Record<RefusalReason, RegistrationErrorCode>>> = Object.freeze({
  'prover-not-authorized': 'ERR_PROVER_NOT_AUTHORIZED',
  'csip-not-authorized': 'ERR_CSIP_NOT_AUTHORIZED',
  'stale-seq': 'ERR_STALE_SEQ',
  superseded: 'ERR_SUPERSEDED',
  revoked: 'ERR_REVOKED',
  'not-found': 'ERR_NOT_FOUND',
  replayed: 'ERR_REPLAYED',
  'too-many-mappings': 'ERR_TOO_MANY_MAPPINGS',
  'too-many-maprefs': 'ERR_TOO_MANY_MAPREFS',
});

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
