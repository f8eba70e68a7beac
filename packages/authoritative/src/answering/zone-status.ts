import type { DiscoveryStore } from '../store/store.js';
import { keyStateAt } from '../keys/key-set.js';

/**
 * What `ctl zone-status` and `ctl key-status` report of a zone's keys, signatures and roll: the
 * key directory (`store.keys`, each key's state from its timing by `keyStateAt`), the store's
 * signature status (`store.signatureStatus`) and the key roller's phase (`dp.roller.status()`).
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
export function zoneKeyStatus(store: DiscoveryStore, origin: string, now: number): KeyStatusJson[] {
  if (store.zoneInfo(origin) === undefined) return [];
  return store.keys.zoneKeys(origin).map((key) => ({
    keyTag: key.keyTag,
    state: keyStateAt(key, now),
    publicKey: Buffer.from(key.dnskey.publicKey).toString('base64'),
    timing: { ...key.timing },
  }));
}

/** The zone's signature state (`store.signatureStatus`); undefined for an unknown zone. */
export function zoneSignatureStatus(
  store: DiscoveryStore,
  origin: string,
): SignatureStatusJson | undefined {
  return store.signatureStatus(origin);
}
