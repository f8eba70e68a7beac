import {
  DNSKEY_FLAG_REVOKE,
  computeKeyTag,
  type DnskeyData,
  type ZoneKey,
} from '@mimi-discovery/common';

/**
 * What a zone publishes and signs with, from its keys' timing metadata (design §5). Each key
 * carries BIND's timing (`dnssec-settime`: publish, activate, inactivate, delete, sync-publish,
 * sync-delete, revoke); at any instant those times give the key one state, and the zone's keys
 * together give the DNSKEY RRset, the keys that sign, and the CDS/CDNSKEY RRsets the parent
 * polls (RFC 7344). Pure functions: the clock is an argument.
 *
 * Worked example, a CSK rollover (RFC 6781 §4.1.2, RFC 7583 §3.3) of zone Z at t=1000: the old
 * key A {publish 0, active 0, inactive 5000, remove 9000, syncPublish 0, syncDelete 5000} and
 * the new key B {publish 1000, active 5000, syncPublish 2000}. At 3000 the DNSKEY RRset holds A
 * and B, A signs every RRset, both sign the DNSKEY RRset, and CDS names A and B (double DS). At
 * 6000, B signs, A is retired (still published: caches may still hold its signatures), CDS names
 * only B. At 9000 A is gone.
 */

/** BIND's key timing metadata (dnssec-settime), seconds since the epoch. */
export interface KeyTiming {
  created: number;
  /** DNSKEY in the apex RRset from this time. */
  publish: number;
  /** Signs the zone's RRsets from (absent: never). */
  active?: number;
  /** Stops signing them. */
  inactive?: number;
  /** DNSKEY gone from the apex RRset. */
  remove?: number;
  /** CDS and CDNSKEY for it published from (RFC 7344). */
  syncPublish?: number;
  /** ... and withdrawn from. */
  syncDelete?: number;
  /** Published with the REVOKE bit (RFC 5011 §2.1) from. */
  revoke?: number;
}

/** The names of the timing fields, in the order BIND's `dnssec-settime` lists them. */
export const KEY_TIMING_FIELDS = Object.freeze([
  'created',
  'publish',
  'active',
  'inactive',
  'remove',
  'syncPublish',
  'syncDelete',
  'revoke',
] as const);

/**
 * A key's state at one instant: `generated` (not yet published), `published` (in the DNSKEY
 * RRset, not signing), `active` (signing), `retired` (published, no longer signing), `revoked`
 * (published with the REVOKE bit), `removed` (no longer published).
 */
export type KeyState = 'generated' | 'published' | 'active' | 'retired' | 'revoked' | 'removed';

/** One key of a zone as the key directory keeps it, without its private half. */
export interface StoredZoneKey {
  /** The zone, canonical. */
  zone: string;
  /** The key tag of the DNSKEY without REVOKE (RFC 4034 Appendix B). */
  keyTag: number;
  /** Flags 257, protocol 3, algorithm 15 (without REVOKE). */
  dnskey: DnskeyData;
  timing: KeyTiming;
}

/** What the zone publishes and signs with at one instant, from its keys' timings. */
export interface ZoneKeySet {
  /** Published keys; a revoked one with flag 0x0080 set. */
  dnskeys: DnskeyData[];
  /**
   * Sign every RRset except DNSKEY/CDS/CDNSKEY: the active keys (one, or two for a moment during
   * a switch).
   */
  signers: ZoneKey[];
  /**
   * Sign DNSKEY, CDS and CDNSKEY: every published key, revoked included (RFC 5011 §2.1 wants a
   * revoked key to sign the DNSKEY RRset it is revoked in).
   */
  dnskeySigners: ZoneKey[];
  /** CDS (digest 2) and CDNSKEY are published for these; `[]`: no CDS RRsets. */
  cds: DnskeyData[];
}

/** Whether `time` is set and has come by `now`. */
function reached(time: number | undefined, now: number): boolean {
  return time !== undefined && now >= time;
}

/**
 * The state of `key` at `now` (seconds). The later stages win: a key past `remove` is removed
 * whatever else its timing says, a revoked key is revoked even while its `active` window runs
 * (RFC 5011 §2.1: a revoked key signs only the DNSKEY RRset).
 */
export function keyStateAt(key: StoredZoneKey, now: number): KeyState {
  const t = key.timing;
  if (reached(t.remove, now)) return 'removed';
  if (now < t.publish) return 'generated';
  if (reached(t.revoke, now)) return 'revoked';
  if (reached(t.inactive, now)) return 'retired';
  if (reached(t.active, now)) return 'active';
  return 'published';
}

/** Whether the key's DNSKEY is in the apex RRset in `state`. */
export function isPublishedState(state: KeyState): boolean {
  return state === 'published' || state === 'active' || state === 'retired' || state === 'revoked';
}

/** The DNSKEY RDATA of a key with the REVOKE bit set (its key tag changes with it). */
export function revokedDnskey(dnskey: DnskeyData): DnskeyData {
  return { ...dnskey, flags: dnskey.flags | DNSKEY_FLAG_REVOKE };
}

/**
 * The key set of a zone at `now`, from its keys (oldest first; the order is kept in every list)
 * and a way to their private halves (`privateKey`; a key whose private half is missing publishes
 * its DNSKEY but cannot sign and is left out of `signers`/`dnskeySigners`, which the stores
 * refuse before writing anything). The keys in `cds` are the published, unrevoked keys inside
 * their `syncPublish`..`syncDelete` window.
 */
export function keySetAt(
  keys: readonly StoredZoneKey[],
  privateKey: (k: StoredZoneKey) => ZoneKey | undefined,
  now: number,
): ZoneKeySet {
  const set: ZoneKeySet = { dnskeys: [], signers: [], dnskeySigners: [], cds: [] };
  for (const key of keys) {
    const state = keyStateAt(key, now);
    if (!isPublishedState(state)) continue;
    const revoked = state === 'revoked';
    const dnskey = revoked ? revokedDnskey(key.dnskey) : key.dnskey;
    set.dnskeys.push(dnskey);
    const secret = privateKey(key);
    if (secret !== undefined) {
      const signer: ZoneKey = revoked
        ? { ...secret, dnskey, keyTag: computeKeyTag(dnskey) }
        : secret;
      set.dnskeySigners.push(signer);
      if (state === 'active') set.signers.push(secret);
    }
    if (!revoked && reached(key.timing.syncPublish, now) && !reached(key.timing.syncDelete, now)) {
      set.cds.push(key.dnskey);
    }
  }
  return set;
}

/**
 * The next instant after `now` at which some key's state or CDS membership changes, or
 * undefined when none is scheduled: when a roller or a store should compute the key set again.
 */
export function nextKeyEvent(keys: readonly StoredZoneKey[], now: number): number | undefined {
  let next: number | undefined;
  for (const key of keys) {
    for (const field of KEY_TIMING_FIELDS) {
      const at = key.timing[field];
      if (at !== undefined && at > now && (next === undefined || at < next)) next = at;
    }
  }
  return next;
}
