import { MimiError } from '@mimi-discovery/common';

/**
 * The error of the zone store (`store.ts`), in a module that imports nothing else of this
 * package: the store implementations, the signer, the change checks and the codecs all throw it,
 * and none of them has to import the store contract to do so.
 */

/** Stable codes of {@link StoreError}. */
export type StoreErrorCode =
  /** No zone with that origin in this store. */
  | 'ERR_STORE_NO_ZONE'
  /** `addZone` for an origin the store already holds. */
  | 'ERR_STORE_ZONE_EXISTS'
  /** Invalid zone settings (`addZone`). */
  | 'ERR_STORE_BAD_ZONE'
  /** A name outside the zone it was given for. */
  | 'ERR_STORE_OUT_OF_ZONE'
  /** A change the store does not accept (type, owner, records, or the zone's structure). */
  | 'ERR_STORE_BAD_CHANGE'
  /** The store was closed. */
  | 'ERR_STORE_CLOSED'
  /** Too many zone streams at once, or one that ran past its time (`streamZone`). */
  | 'ERR_STORE_BUSY'
  /** The data directory holds a different prover key than the one configured. */
  | 'ERR_STORE_PROVER_KEY'
  /** Stored data that does not decode (a damaged or foreign data directory). */
  | 'ERR_STORE_CORRUPT'
  /** A data directory written by a newer version, in a layout this version cannot read. */
  | 'ERR_STORE_NEWER_FORMAT'
  /** A database whose schema is older than this version reads (`mimi-discovery db migrate`). */
  | 'ERR_STORE_OLDER_FORMAT'
  /** The data directory cannot be opened or written. */
  | 'ERR_STORE_IO'
  /**
   * A key the zone needs to sign with is not in the key directory (after a reload), or the zone
   * has no key that may sign: the write is refused and nothing changes.
   */
  | 'ERR_STORE_KEY_MISSING';

/** A fault of a `DiscoveryStore`: bad input (nothing was changed) or a storage failure. */
export class StoreError extends MimiError<StoreErrorCode> {
  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** The error for an origin the store does not hold. */
export function noZoneError(origin: string): StoreError {
  return new StoreError('ERR_STORE_NO_ZONE', `the store holds no zone ${origin}`);
}
