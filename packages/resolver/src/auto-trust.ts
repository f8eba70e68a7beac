import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import {
  DNSKEY_FLAG_REVOKE,
  DNSKEY_FLAG_SEP,
  DNSSEC_ALGORITHM_ED25519,
  canonicalName,
  computeDs,
  computeKeyTag,
  dsMatchesDnskey,
  formatRecord,
  namesEqual,
  parseTrustAnchor,
  silentLogger,
  verifyRRset,
  type DnskeyData,
  type DsData,
  type Logger,
  type RecordOf,
  type ResourceRecord,
  type TrustAnchor,
} from '@mimi-discovery/common';

/**
 * Automated updates of the apex's trust anchor (RFC 5011), as Unbound's `auto-trust-anchor-file`
 * does them: the resolver asks the apex for its DNSKEY RRset now and then, and a new SEP key that
 * the RRset carries, signed by a key already trusted, becomes trusted once it has been seen for
 * the add hold-down; a key the zone publishes with the REVOKE bit (0x0080) and signs the RRset
 * with is dropped at once and never trusted again.
 *
 * States of a key (RFC 5011 §4): `addpend` (seen, hold-down running), `valid` (trusted),
 * `missing` (trusted, absent from the last RRset), `revoked` (never trusted again), `removed`
 * (revoked for the remove hold-down: kept only so that it is never added again). Transitions,
 * each only on a DNSKEY RRset that validated with a trusted key (revocations excepted):
 *
 * | from      | event                                              | to        |
 * | --------- | -------------------------------------------------- | --------- |
 * | (none)    | new SEP key in the RRset                           | `addpend` |
 * | `addpend` | still present when the hold-down has passed        | `valid`   |
 * | `addpend` | absent                                             | (none)    |
 * | `valid`   | absent                                             | `missing` |
 * | `missing` | present again                                      | `valid`   |
 * | any       | published revoked, self-signed (RFC 5011 §2.1)     | `revoked` |
 * | `revoked` | revoked for the remove hold-down                   | `removed` |
 *
 * The add hold-down is the configured one or the RRset's original TTL, whichever is greater
 * (RFC 5011 §2.4.1). A revocation needs no other key: only the holder of the private key can make
 * its self-signature, so it is applied even when the rest of the RRset does not validate, as
 * Unbound does. A revoked key with no valid self-signature, or one the resolver never tracked,
 * changes nothing.
 *
 * The state is written to the trust anchor file (temp file, fsync, rename, fsync of the
 * directory) whenever it changes: trusted keys as DNSKEY lines that the resolver, Unbound's
 * `trust-anchor-file` and `auto-trust-anchor-file` all read, each with its state in a `;`
 * comment as Unbound writes it; keys not trusted (`addpend`, `revoked`, `removed`) on commented
 * lines, so that no static reader trusts them, which the resolver reads back at start to keep
 * their hold-downs across restarts:
 *
 * ```
 * ; autotrust trust anchor file of mimi.arpa (RFC 5011), rewritten by the resolver
 * ;;id: mimi.arpa. 1
 * ;;last_success: 1765098000
 * mimi.arpa. 3600 IN DNSKEY 257 3 15 l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4= ;{id = 3613 (ksk)} ;;state=2 [ VALID ] ;;count=0 ;;lastchange=1765000000
 * ;;pending: mimi.arpa. 3600 IN DNSKEY 257 3 15 6xd9… ;{id = 4101 (ksk)} ;;state=1 [ ADDPEND ] ;;count=0 ;;lastchange=1765098000 ;;addat=1767690000
 * ```
 *
 * A file that cannot be written leaves the state in memory, logged once; probes go on.
 */

/** Default add hold-down (RFC 5011 §2.4.1: 30 days). */
export const AUTO_TRUST_ADD_HOLD_DOWN_SECONDS = 30 * 86_400;
/** Default remove hold-down (RFC 5011 §2.4.2: 30 days). */
export const AUTO_TRUST_REMOVE_HOLD_DOWN_SECONDS = 30 * 86_400;
/** The shortest interval between probes RFC 5011 §2.3 allows (1 hour), unless `maxProbeSeconds` is lower. */
export const AUTO_TRUST_MIN_PROBE_SECONDS = 3_600;
/** The longest interval between probes (RFC 5011 §2.3: 15 days). */
export const AUTO_TRUST_MAX_PROBE_SECONDS = 15 * 86_400;
/**
 * Seconds from start to the first probe: soon, to see what changed while the resolver was down,
 * but apart from the burst of queries a start brings (and a restart loop cannot turn into a
 * stream of DNSKEY queries to the root). A lower `maxProbeSeconds` lowers it too.
 */
export const AUTO_TRUST_FIRST_PROBE_SECONDS = 60;
/** The longest wait before a failed probe is retried (RFC 5011 §2.3: 1 day). */
export const AUTO_TRUST_MAX_RETRY_SECONDS = 86_400;
/**
 * Keys tracked at most (every state): a DNSKEY RRset with more keys is not processed, and the
 * oldest `removed` keys are forgotten first. The apex publishes two or three during a roll.
 */
export const AUTO_TRUST_MAX_KEYS = 16;

/** A tracked key's state (RFC 5011 §4). */
export type TrustAnchorKeyState = 'addpend' | 'valid' | 'missing' | 'revoked' | 'removed';

/** Every state, in the order metrics list them. */
export const TRUST_ANCHOR_KEY_STATES: readonly TrustAnchorKeyState[] = Object.freeze([
  'addpend',
  'valid',
  'missing',
  'revoked',
  'removed',
]);

/** A key of the trust point and its state. */
export interface TrackedKey {
  /** The key without the REVOKE bit. */
  readonly dnskey: DnskeyData;
  /** Its key tag without the REVOKE bit. */
  readonly keyTag: number;
  readonly state: TrustAnchorKeyState;
  /** When it entered this state (seconds since the epoch). */
  readonly since: number;
  /** For `addpend`: when the hold-down ends. */
  readonly addAt?: number;
}

/** The trust point: the apex's tracked keys, and the DS of the anchor file while no key is known. */
export interface TrustPoint {
  readonly zone: string;
  readonly keys: readonly TrackedKey[];
  /** DS records from the anchor file, trusted until a key matching one is seen (then `valid`). */
  readonly ds: readonly DsData[];
}

/** `autoTrustAnchor` of a resolver's config. */
export interface AutoTrustSettings {
  /** Default true. */
  readonly enabled?: boolean;
  /** Default {@link AUTO_TRUST_ADD_HOLD_DOWN_SECONDS}. */
  readonly addHoldDownSeconds?: number;
  /** Default {@link AUTO_TRUST_REMOVE_HOLD_DOWN_SECONDS}. */
  readonly removeHoldDownSeconds?: number;
  /** An upper bound on the probe interval, below RFC 5011's own when set (tests, labs). */
  readonly maxProbeSeconds?: number;
  /** The anchor file to keep the state in; absent: memory only. */
  readonly file?: string;
}

/** What one DNSKEY question to the apex's servers gave. */
export type DnskeyFetch =
  | {
      readonly kind: 'response';
      readonly answers: readonly ResourceRecord[];
      readonly server: string;
    }
  | { readonly kind: 'failed'; readonly detail: string };

/** What processing one DNSKEY RRset did. */
export interface ProbeOutcome {
  /** `secure`: validated by a trusted key; `bogus`: not (only self-signed revocations applied). */
  readonly kind: 'secure' | 'bogus' | 'failed';
  readonly detail: string;
  /** Keys whose state changed, with their new state. */
  readonly changes: ReadonlyArray<{ keyTag: number; state: TrustAnchorKeyState | 'forgotten' }>;
}

/** What {@link startAutoTrust} takes. */
export interface AutoTrustInit {
  readonly anchor: TrustAnchor;
  readonly settings: AutoTrustSettings;
  /** Seconds since the epoch (the resolver's clock). */
  readonly now: () => number;
  readonly log?: Logger;
  /** Asks the apex's servers for its DNSKEY RRset with DO (RRSIGs included). */
  readonly fetch: () => Promise<DnskeyFetch>;
  /** Called after the trusted keys changed (the resolver forgets the apex's cached keys). */
  readonly onChange?: () => void;
  /**
   * Whether probes run on a timer, the first {@link AUTO_TRUST_FIRST_PROBE_SECONDS} after start;
   * default true (tests call {@link AutoTrust.probe}).
   */
  readonly schedule?: boolean;
}

/** The resolver's view of its trust point. */
export interface AutoTrust {
  /** The DS the apex's DNSKEY RRset is validated against now: of every trusted key. */
  ds(): readonly DsData[];
  /** Every tracked key. */
  keys(): readonly TrackedKey[];
  /** Tracked keys by state, for `resolver_trust_anchor_keys{state}`. */
  counts(): Record<TrustAnchorKeyState, number>;
  /** Asks the apex for its DNSKEY RRset and applies it; never rejects. */
  probe(): Promise<ProbeOutcome>;
  /** When the next probe is due (seconds since the epoch); undefined when disabled. */
  nextProbeAt(): number | undefined;
  /** Whether the last state change could not be written to the file. */
  readonly unwritten: () => boolean;
  /** Stops the probes. */
  close(): void;
}

const isRevoked = (key: DnskeyData): boolean => (key.flags & DNSKEY_FLAG_REVOKE) !== 0;
const isSep = (key: DnskeyData): boolean => (key.flags & DNSKEY_FLAG_SEP) !== 0;
const unrevoked = (key: DnskeyData): DnskeyData => ({
  ...key,
  flags: key.flags & ~DNSKEY_FLAG_REVOKE,
});

function sameKey(a: DnskeyData, b: DnskeyData): boolean {
  return (
    a.flags === b.flags &&
    a.protocol === b.protocol &&
    a.algorithm === b.algorithm &&
    Buffer.from(a.publicKey).equals(Buffer.from(b.publicKey))
  );
}

const TRUSTED: ReadonlySet<TrustAnchorKeyState> = new Set(['valid', 'missing']);

/** The DS a trust point validates the apex's DNSKEY RRset against. */
export function trustedDs(point: TrustPoint): DsData[] {
  // The anchor's DS not yet matched by a key seen stay trusted beside the keys.
  const keys = point.keys.filter((k) => TRUSTED.has(k.state));
  return [...keys.map((k) => computeDs(point.zone, k.dnskey)), ...point.ds];
}

/** The trust point of an anchor as configured: its DNSKEYs `valid`, its DS kept until matched. */
export function trustPointOf(anchor: TrustAnchor, now: number): TrustPoint {
  const zone = canonicalName(anchor.zone);
  return {
    zone,
    keys: anchor.dnskeys
      .filter((k) => !isRevoked(k))
      .map((k) => ({ dnskey: k, keyTag: computeKeyTag(k), state: 'valid' as const, since: now })),
    ds: anchor.ds.filter((d) => !anchor.dnskeys.some((k) => dsMatchesDnskey(zone, d, k))),
  };
}

/** The settings' values with their defaults. */
interface HoldDowns {
  readonly add: number;
  readonly remove: number;
}

function holdDowns(settings: AutoTrustSettings): HoldDowns {
  return {
    add: settings.addHoldDownSeconds ?? AUTO_TRUST_ADD_HOLD_DOWN_SECONDS,
    remove: settings.removeHoldDownSeconds ?? AUTO_TRUST_REMOVE_HOLD_DOWN_SECONDS,
  };
}

/**
 * Applies one DNSKEY response of the apex to a trust point (the table of the module comment):
 * pure, so that every transition is tested with an injected time. `answers` is the response's
 * answer section (DNSKEY and RRSIG records).
 */
export function applyDnskeys(
  point: TrustPoint,
  answers: readonly ResourceRecord[],
  now: number,
  hold: HoldDowns,
): { point: TrustPoint; outcome: ProbeOutcome } {
  const zone = point.zone;
  const rrset = answers.filter(
    (rr): rr is RecordOf<'DNSKEY'> => rr.type === 'DNSKEY' && namesEqual(rr.name, zone),
  );
  const sigs = answers.filter(
    (rr): rr is RecordOf<'RRSIG'> =>
      rr.type === 'RRSIG' &&
      rr.data.typeCovered === 'DNSKEY' &&
      namesEqual(rr.name, zone) &&
      namesEqual(rr.data.signerName, zone),
  );
  const unchanged = (kind: ProbeOutcome['kind'], detail: string) => ({
    point,
    outcome: { kind, detail, changes: [] },
  });
  if (rrset.length === 0) return unchanged('bogus', 'no DNSKEY RRset at the apex');
  if (rrset.length > AUTO_TRUST_MAX_KEYS) {
    return unchanged(
      'bogus',
      `the DNSKEY RRset holds ${rrset.length} keys, over ${AUTO_TRUST_MAX_KEYS}`,
    );
  }
  const keys = point.keys.map((k) => ({ ...k }));
  const changes: Array<{ keyTag: number; state: TrustAnchorKeyState | 'forgotten' }> = [];
  const set = (key: TrackedKey & { addAt?: number }, state: TrustAnchorKeyState): void => {
    const index = keys.findIndex((k) => sameKey(k.dnskey, key.dnskey));
    const next: TrackedKey = { dnskey: key.dnskey, keyTag: key.keyTag, state, since: now };
    if (index >= 0) keys[index] = next;
    else keys.push(next);
    changes.push({ keyTag: key.keyTag, state });
  };
  const verifiesWith = (key: DnskeyData): boolean =>
    sigs.some(
      (sig) =>
        sig.data.keyTag === computeKeyTag(key) &&
        verifyRRset(rrset, sig, [key], now).kind === 'verified',
    );

  // 1. Revocations (RFC 5011 §2.1): a revoked key that signs the RRset itself.
  for (const rr of rrset) {
    if (!isRevoked(rr.data)) continue;
    const base = unrevoked(rr.data);
    const tracked = keys.find((k) => sameKey(k.dnskey, base));
    if (tracked === undefined || tracked.state === 'revoked' || tracked.state === 'removed') {
      continue;
    }
    if (!verifiesWith(rr.data)) continue;
    set(tracked, 'revoked');
  }

  // 2. The RRset validates with a key trusted now (RFC 5011 §2.2 and §2.4 act only on such).
  const ds = trustedDs({ ...point, keys });
  const signers = rrset.filter(
    (rr) =>
      !isRevoked(rr.data) &&
      rr.data.algorithm === DNSSEC_ALGORITHM_ED25519 &&
      ds.some((d) => dsMatchesDnskey(zone, d, rr.data)),
  );
  const validated = signers.some((rr) => verifiesWith(rr.data));
  if (!validated) {
    return {
      point: { ...point, keys },
      outcome: {
        kind: 'bogus',
        detail: 'the DNSKEY RRset is not signed by a trusted key',
        changes,
      },
    };
  }

  // 3. Keys of the anchor's DS, now seen: trusted as keys.
  let anchorDs = point.ds;
  if (anchorDs.length > 0) {
    for (const rr of signers) {
      if (!anchorDs.some((d) => dsMatchesDnskey(zone, d, rr.data))) continue;
      if (!keys.some((k) => sameKey(k.dnskey, rr.data))) {
        set(
          { dnskey: rr.data, keyTag: computeKeyTag(rr.data), state: 'valid', since: now },
          'valid',
        );
      }
    }
    anchorDs = anchorDs.filter((d) => !signers.some((rr) => dsMatchesDnskey(zone, d, rr.data)));
  }

  // 4. Every SEP key of the RRset: new ones pending, pending ones past the hold-down trusted.
  const originalTtl = Math.min(
    ...rrset.map((rr) => rr.ttl),
    ...sigs.map((s) => s.data.originalTtl),
  );
  const present = rrset.filter((rr) => isSep(rr.data) && !isRevoked(rr.data)).map((rr) => rr.data);
  for (const key of present) {
    const tracked = keys.find((k) => sameKey(k.dnskey, key));
    if (tracked === undefined) {
      if (keys.length >= AUTO_TRUST_MAX_KEYS && !forgetOldestRemoved(keys)) continue;
      const addAt = now + Math.max(hold.add, originalTtl);
      keys.push({ dnskey: key, keyTag: computeKeyTag(key), state: 'addpend', since: now, addAt });
      changes.push({ keyTag: computeKeyTag(key), state: 'addpend' });
    } else if (tracked.state === 'addpend' && now >= (tracked.addAt ?? now)) {
      set(tracked, 'valid');
    } else if (tracked.state === 'missing') set(tracked, 'valid');
  }

  // 5. Tracked keys absent from the RRset, and revoked keys past the remove hold-down.
  const presentAny = (key: DnskeyData): boolean =>
    rrset.some((rr) => sameKey(unrevoked(rr.data), key));
  for (const tracked of [...keys]) {
    if (tracked.state === 'revoked' && now >= tracked.since + hold.remove) {
      set(tracked, 'removed');
    } else if (!presentAny(tracked.dnskey)) {
      if (tracked.state === 'addpend') {
        keys.splice(keys.indexOf(tracked), 1);
        changes.push({ keyTag: tracked.keyTag, state: 'forgotten' });
      } else if (tracked.state === 'valid') set(tracked, 'missing');
    }
  }
  return {
    point: { zone, keys, ds: anchorDs },
    outcome: { kind: 'secure', detail: `${rrset.length} keys`, changes },
  };
}

function forgetOldestRemoved(keys: TrackedKey[]): boolean {
  let oldest = -1;
  keys.forEach((k, i) => {
    if (k.state === 'removed' && (oldest < 0 || k.since < (keys[oldest] as TrackedKey).since)) {
      oldest = i;
    }
  });
  if (oldest < 0) return false;
  keys.splice(oldest, 1);
  return true;
}

/**
 * RFC 5011 §2.3: the probe interval MAX(1 hr, MIN(15 days, ½ original TTL, ½ signature
 * validity left)); after a failure MAX(1 hr, MIN(1 day, ⅒ original TTL, ⅒ validity left)).
 * `maxProbeSeconds` lowers both when set (down to 1 s).
 */
export function probeInterval(
  answers: readonly ResourceRecord[] | undefined,
  now: number,
  failed: boolean,
  maxProbeSeconds?: number,
): number {
  const sigs = (answers ?? []).filter(
    (rr): rr is RecordOf<'RRSIG'> => rr.type === 'RRSIG' && rr.data.typeCovered === 'DNSKEY',
  );
  const ttl = Math.min(Infinity, ...sigs.map((s) => s.data.originalTtl));
  const left = Math.min(Infinity, ...sigs.map((s) => s.data.expiration - now));
  const share = failed ? 0.1 : 0.5;
  const ceiling = failed ? AUTO_TRUST_MAX_RETRY_SECONDS : AUTO_TRUST_MAX_PROBE_SECONDS;
  // Nothing seen to go by (no signature): the shortest interval.
  const rfc =
    sigs.length === 0
      ? AUTO_TRUST_MIN_PROBE_SECONDS
      : Math.max(AUTO_TRUST_MIN_PROBE_SECONDS, Math.min(ceiling, share * ttl, share * left));
  const interval = maxProbeSeconds === undefined ? rfc : Math.min(rfc, maxProbeSeconds);
  return Math.max(1, Math.floor(interval));
}

// ---------------------------------------------------------------------------------------------
// The anchor file

const STATE_CODES: Readonly<Record<TrustAnchorKeyState, number>> = Object.freeze({
  addpend: 1,
  valid: 2,
  missing: 3,
  revoked: 4,
  removed: 5,
});

/** The anchor file's text for a trust point (module comment). */
export function formatTrustPoint(point: TrustPoint, lastSuccess: number, ttl = 3600): string {
  const lines = [
    `; autotrust trust anchor file of ${point.zone} (RFC 5011), rewritten by the resolver`,
    `;;id: ${point.zone === '.' ? '.' : `${point.zone}.`} 1`,
    `;;last_success: ${lastSuccess}`,
  ];
  for (const ds of point.ds) {
    lines.push(formatRecord({ name: point.zone, type: 'DS', class: 'IN', ttl, data: ds }));
  }
  for (const key of point.keys) {
    const dnskey =
      key.state === 'revoked' || key.state === 'removed'
        ? { ...key.dnskey, flags: key.dnskey.flags | DNSKEY_FLAG_REVOKE }
        : key.dnskey;
    const rr = formatRecord({ name: point.zone, type: 'DNSKEY', class: 'IN', ttl, data: dnskey });
    const state = `;{id = ${key.keyTag} (ksk)} ;;state=${STATE_CODES[key.state]} [ ${key.state.toUpperCase()} ] ;;count=0 ;;lastchange=${key.since}`;
    const addAt = key.addAt === undefined ? '' : ` ;;addat=${key.addAt}`;
    lines.push(
      TRUSTED.has(key.state) ? `${rr} ${state}${addAt}` : `;;${key.state}: ${rr} ${state}${addAt}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

const KEY_LINE = /^;;(addpend|revoked|removed): (.*?) ;\{id = \d+ \(ksk\)\}(.*)$/;
const STATE_LINE = /;;state=\d+ \[\s*([A-Z]+)\s*\].*?;;lastchange=(\d+)(?: ;;addat=(\d+))?/;

/**
 * Reads the state a trust point file holds back (the lines {@link formatTrustPoint} writes): the
 * trusted records as a plain trust anchor file is read (`parseTrustAnchor`), the state of each
 * key from its comment. Lines without a state comment (a hand-written anchor) are `valid` since
 * `now`.
 */
export function parseTrustPoint(text: string, now: number): TrustPoint {
  const anchor = parseTrustAnchor(text);
  const point = trustPointOf(anchor, now);
  // In the order of the file; keys of lines without a state comment after them, `valid`.
  const keys: TrackedKey[] = [];
  const lines = text.split('\n');
  for (const line of lines) {
    const commented = KEY_LINE.exec(line);
    const source = commented === null ? line : `${commented[2] ?? ''}${commented[3] ?? ''}`;
    const state = STATE_LINE.exec(source);
    if (state === null) continue;
    let parsed: TrustAnchor;
    try {
      parsed = parseTrustAnchor(source.slice(0, source.indexOf(';')));
    } catch {
      continue;
    }
    const data = parsed.dnskeys[0];
    if (data === undefined || canonicalName(parsed.zone) !== point.zone) continue;
    const name = (state[1] ?? '').toLowerCase() as TrustAnchorKeyState;
    if (!TRUST_ANCHOR_KEY_STATES.includes(name)) continue;
    const dnskey = unrevoked(data);
    const since = Number(state[2]);
    const entry: TrackedKey = {
      dnskey,
      keyTag: computeKeyTag(dnskey),
      state: name,
      since,
      ...(state[3] === undefined ? {} : { addAt: Number(state[3]) }),
    };
    if (!keys.some((k) => sameKey(k.dnskey, dnskey)) && keys.length < AUTO_TRUST_MAX_KEYS) {
      keys.push(entry);
    }
  }
  for (const key of point.keys) {
    if (!keys.some((k) => sameKey(k.dnskey, key.dnskey))) keys.push(key);
  }
  return { ...point, keys };
}

/** Writes `text` to `path`: a temp file beside it, fsync, rename, fsync of the directory. */
function writeAtomically(path: string, text: string): void {
  const temp = join(dirname(path), `.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(temp, 'wx', 0o644);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    unlinkSync(temp);
    throw error;
  }
  closeSync(fd);
  try {
    renameSync(temp, path);
  } catch (error) {
    unlinkSync(temp);
    throw error;
  }
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

// ---------------------------------------------------------------------------------------------
// The keeper

/**
 * Starts keeping the trust point of `init.anchor`: restored from the anchor file when it holds
 * state, probed {@link AUTO_TRUST_FIRST_PROBE_SECONDS} after start and then at the RFC 5011 §2.3
 * interval. Disabled (`enabled: false`), the
 * anchor stays as configured and nothing is probed.
 */
export function startAutoTrust(init: AutoTrustInit): AutoTrust {
  const log = init.log ?? silentLogger;
  const settings = init.settings;
  const hold = holdDowns(settings);
  const enabled = settings.enabled !== false;
  let point = restore(init, log);
  let ds = trustedDs(point);
  // A lab's `maxProbeSeconds` below the first probe's delay brings that forward too.
  const first = Math.min(
    AUTO_TRUST_FIRST_PROBE_SECONDS,
    settings.maxProbeSeconds ?? AUTO_TRUST_FIRST_PROBE_SECONDS,
  );
  let next: number | undefined = enabled ? init.now() + first : undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let unwritten = false;
  let running: Promise<ProbeOutcome> | undefined;

  const save = (): void => {
    if (settings.file === undefined) return;
    try {
      writeAtomically(settings.file, formatTrustPoint(point, Math.floor(init.now())));
      if (unwritten) log.info('trust-anchor-file-written', { file: settings.file });
      unwritten = false;
    } catch (error) {
      if (!unwritten) {
        log.warn('trust-anchor-file-unwritable', {
          file: settings.file,
          error,
          detail: 'the trust anchor state is kept in memory only',
        });
      }
      unwritten = true;
    }
  };

  const probeOnce = async (): Promise<ProbeOutcome> => {
    const now = Math.floor(init.now());
    let fetched: DnskeyFetch;
    try {
      fetched = await init.fetch();
    } catch (error) {
      fetched = { kind: 'failed', detail: error instanceof Error ? error.message : String(error) };
    }
    if (fetched.kind === 'failed') {
      next = now + probeInterval(undefined, now, true, settings.maxProbeSeconds);
      log.info('trust-anchor-probe-failed', { detail: fetched.detail });
      return { kind: 'failed', detail: fetched.detail, changes: [] };
    }
    const applied = applyDnskeys(point, fetched.answers, now, hold);
    const before = ds;
    point = applied.point;
    ds = trustedDs(point);
    const failed = applied.outcome.kind !== 'secure';
    next = now + probeInterval(fetched.answers, now, failed, settings.maxProbeSeconds);
    if (applied.outcome.changes.length > 0) {
      for (const change of applied.outcome.changes) {
        log.info('trust-anchor-key', {
          zone: point.zone,
          keyTag: change.keyTag,
          state: change.state,
        });
      }
      save();
      if (ds.length === 0) {
        log.error('trust-anchor-no-key', {
          zone: point.zone,
          detail: 'no key of the trust point is trusted',
        });
      }
      if (!sameDs(before, ds)) init.onChange?.();
    }
    if (failed)
      log.warn('trust-anchor-probe-bogus', {
        server: fetched.server,
        detail: applied.outcome.detail,
      });
    return applied.outcome;
  };

  const schedule = (): void => {
    if (closed || next === undefined || init.schedule === false) return;
    const delayMs = Math.max(0, (next - init.now()) * 1000);
    timer = setTimeout(
      () => {
        void probe().finally(schedule);
      },
      Math.min(delayMs, 2 ** 31 - 1),
    );
    timer.unref();
  };

  const probe = (): Promise<ProbeOutcome> => {
    running ??= probeOnce().finally(() => {
      running = undefined;
    });
    return running;
  };

  schedule();
  return {
    ds: () => ds,
    keys: () => point.keys,
    counts: () => {
      const counts = Object.fromEntries(TRUST_ANCHOR_KEY_STATES.map((s) => [s, 0])) as Record<
        TrustAnchorKeyState,
        number
      >;
      for (const key of point.keys) counts[key.state]++;
      return counts;
    },
    probe: () =>
      enabled ? probe() : Promise.resolve({ kind: 'failed', detail: 'disabled', changes: [] }),
    nextProbeAt: () => next,
    unwritten: () => unwritten,
    close: () => {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
    },
  };
}

function sameDs(a: readonly DsData[], b: readonly DsData[]): boolean {
  const id = (d: DsData): string =>
    `${d.keyTag}/${d.digestType}/${Buffer.from(d.digest).toString('hex')}`;
  const x = a.map(id).sort();
  const y = b.map(id).sort();
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/** The trust point from the anchor file when it can be read, else from the configured anchor. */
function restore(init: AutoTrustInit, log: Logger): TrustPoint {
  const now = Math.floor(init.now());
  const file = init.settings.file;
  if (file !== undefined && init.settings.enabled !== false) {
    try {
      const point = parseTrustPoint(readFileSync(file, 'utf8'), now);
      if (canonicalName(point.zone) === canonicalName(init.anchor.zone)) return point;
    } catch (error) {
      log.info('trust-anchor-file-unread', { file, error });
    }
  }
  return trustPointOf(init.anchor, now);
}
