import type { DiscoveryStore } from '../store/store.js';

/**
 * What `ctl zone-status` and `ctl key-status` report of a zone's keys, signatures and roll,
 * read from the store (and the key roller, once there is one).
 *
 * Only this file reads the keys' states, the signature status and the roll phase, so that the
 * key directory (`store.keys`, `keyStateAt`), `store.signatureStatus` and `dp.roller.status()`
 * plug in here alone. Until they exist, the store knows one key per zone, the key that signs
 * it, and no roll: that key is reported as `active` (it signs every RRset) without timing, and
 * `signatures` and `roll` are left out rather than guessed.
 */

/** One key of a zone as the control channel shows it. */
export interface KeyStatusJson {
  readonly keyTag: number;
  /** `KeyState` of the key directory: `active` for the key that signs the zone. */
  readonly state: string;
  /** The DNSKEY's public key, base64 (RFC 4034 §2.2 presentation). */
  readonly publicKey: string;
  /** Key timing metadata (seconds since the epoch), when the key directory keeps it. */
  readonly timing?: Readonly<Record<string, number>>;
}

/** The signature state of a zone: earliest RRSIG expiry, RRsets left to re-sign, signers. */
export interface SignatureStatusJson {
  readonly earliestExpiry: number | undefined;
  readonly pendingResign: number;
  readonly signers: readonly number[];
}

/** The roll of a zone's keys: the roller's phase and when its next event is due. */
export interface RollStatusJson {
  readonly phase: string;
  readonly nextEvent: number | undefined;
}

/** Every key of `origin` with its state at `now`; [] for a zone the store does not hold. */
export function zoneKeyStatus(
  store: DiscoveryStore,
  origin: string,
  _now: number,
): KeyStatusJson[] {
  const info = store.zoneInfo(origin);
  if (info === undefined) return [];
  return [
    {
      keyTag: info.keyTag,
      state: 'active',
      publicKey: Buffer.from(info.publicKey).toString('base64'),
    },
  ];
}

/** The zone's signature state, when the store keeps it (`store.signatureStatus`). */
export function zoneSignatureStatus(
  _store: DiscoveryStore,
  _origin: string,
): SignatureStatusJson | undefined {
  return undefined;
}

/** The roller's status of the zone, when a roller runs (`dp.roller.status(origin)`). */
export function zoneRollStatus(_origin: string): RollStatusJson | undefined {
  return undefined;
}
