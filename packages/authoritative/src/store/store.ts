import type {
  Ed25519KeyPair,
  ResourceRecord,
  RRType,
  ZoneKey,
  ZoneView,
} from '@mimi-discovery/common';
import type { OperationOutcome, ReplayRecord, StoreOperation } from './mapping-ops.js';
import type { ApplyResult, RRsetChange, ZoneInfo, ZoneInit } from './store-types.js';
import type { StoreChanges } from '../zone/zone-changes.js';
import type { JournalEntry } from '../zone/journal.js';

/**
 * The contract between a Discovery Provider's zone data and everything that reads or changes it
 * (the answering path, the registration API, delegation management, zone import and export).
 * Implementations: the LMDB store (the embedded default, `lmdb-store.ts`) and the memory store
 * (`memory-store.ts`, for ephemeral servers and tests). One shared test battery runs against both.
 *
 * Every write resolves only after it is durable (LMDB: its commit flushed to disk) and applies
 * atomically; one that changes records re-signs what it changed and increases the zone's SOA
 * serial by at least one. A write that fails rejects with a `StoreError` (`store-error.ts`) and
 * changes nothing. Once a write has resolved, every read of the same store object sees it; a
 * write by another process on the same data (the CLI) is seen from the next event turn on.
 *
 * A change whose outcome depends on what is stored — adding a mapping under the `seq` and "new"
 * rules, a removal, a revocation, a MapRef request, adding AUTHKEYs — is an operation
 * ({@link DiscoveryStore.applyOperation}) that the store plans and commits inside one write
 * transaction, wherever that transaction runs: never a whole RRset a caller read earlier and
 * writes back (design §8). The anti-replay records that removals, revocations and MapRef
 * requests leave are part of the store, written in the same transaction, and kept until nothing
 * they stop could verify any more (`mapping-ops.ts`).
 *
 * Names given to the store may be in any case, with or without the trailing dot; the store keeps
 * owner names in canonical form (RFC 4034 §6.2: lowercase, no trailing dot).
 */
export interface DiscoveryStore {
  /** Origins of the zones this store holds, canonical (lowercase, no trailing dot). */
  listZones(): string[];
  /**
   * Creates a zone: SOA (serial 1), NS, DNSKEY (a new combined zone key) and the apex AUTHKEY
   * records (this DP's prover key and `init.authkeys`), all signed. Rejects with
   * `ERR_STORE_ZONE_EXISTS` when the store already holds the origin, `ERR_STORE_BAD_ZONE` for
   * invalid settings.
   */
  addZone(init: ZoneInit): Promise<ZoneInfo>;
  /** Deletes a zone and its key. Rejects with `ERR_STORE_NO_ZONE` when there is no such zone. */
  removeZone(origin: string): Promise<void>;
  /** The zone's settings and key facts, or undefined when the store has no such zone. */
  zoneInfo(origin: string): ZoneInfo | undefined;
  /** The most specific zone of this store that contains `name`, or undefined. */
  findZone(name: string): string | undefined;
  /** Read access for `lookupZone`, with every authoritative RRset signed. */
  zoneView(origin: string): ZoneView | undefined;
  /** The zone's signing key (for online signing of compact denials). */
  zoneKey(origin: string): ZoneKey | undefined;
  /** The DP's prover key: signs attestations; listed as AUTHKEY `prover` at every apex. */
  proverKey(): Ed25519KeyPair;
  /**
   * A number that changes whenever a write of this store becomes visible to readers (apply, an
   * operation that changed records, resign, addZone, removeZone): what an answer cache checks
   * before reusing an answer. For a write through this store object it has changed by the time
   * the write's promise resolves.
   */
  generation(): number;
  /**
   * What changed since `generation` (a value {@link generation} returned): the owner names whose
   * answers may differ, or `'all'` (a delegation changed, a zone was added or removed, records
   * were re-signed, or `generation` is older than the last `CHANGE_LOG_ENTRIES` writes).
   */
  changesSince(generation: number): StoreChanges;
  /**
   * The records of one RRset (no RRSIGs), empty when absent. Throws `ERR_STORE_NO_ZONE` for an
   * unknown zone and `ERR_STORE_OUT_OF_ZONE` for a name outside it.
   */
  readRRset(origin: string, name: string, type: RRType): ResourceRecord[];
  /**
   * Every record of the zone, RRSIGs included (for export and transfer), in canonical order
   * (RFC 4034 §6.1), each RRset followed by its RRSIG. Throws `ERR_STORE_NO_ZONE` for an
   * unknown zone.
   */
  readZone(origin: string): ResourceRecord[];
  /**
   * Applies changes to one zone atomically: each change replaces or deletes one RRset. Signs the
   * changed RRsets, bumps the SOA serial once, and resolves after the commit is durable.
   */
  apply(origin: string, changes: readonly RRsetChange[]): Promise<ApplyResult>;
  /**
   * Plans and applies one operation (`mapping-ops.ts`) inside one write transaction: reads the
   * RRsets and anti-replay records it depends on there, and commits the changed RRsets (signed,
   * serial bumped) and anti-replay records together. A refused operation resolves with a
   * `refused` outcome and changes nothing; one that has nothing to change resolves `applied`
   * with the serial unchanged (once everything before it is durable). Malformed operations
   * reject with `ERR_STORE_BAD_CHANGE` or `ERR_STORE_OUT_OF_ZONE` before any transaction.
   */
  applyOperation(origin: string, operation: StoreOperation): Promise<OperationOutcome>;
  /**
   * The anti-replay records (removals, revocations, applied MapRef requests), expired ones
   * included until pruned, at most `limit` (default all): for diagnostics and tests.
   */
  replayRecords(limit?: number): ReplayRecord[];
  /**
   * Re-signs every RRset whose RRSIG expires before `before` (seconds; default: now plus the
   * store's refresh margin) and bumps the serial of each zone it touched; returns how many
   * RRsets it re-signed. It also prunes the anti-replay records whose time has passed (by the
   * store's clock), `REPLAY_PRUNE_BATCH` per transaction, without bumping any serial.
   */
  resign(before?: number): Promise<number>;
  /** Journal entries leading from serial `from` to the current serial, oldest first: [] when
   *  `from` is current, undefined when the journal does not reach back to `from` (or `from` is
   *  not a serial the zone had) — a transfer then sends the whole zone. Throws ERR_STORE_NO_ZONE. */
  journalSince(origin: string, from: number): Promise<JournalEntry[] | undefined>;
  /** The zone's records as `readZone` gives them (canonical order, RRSIGs and the NSEC3 chain
   *  included, SOA where canonical order puts it: first), in batches of about
   *  STREAM_BATCH_RECORDS, read in pieces so memory stays constant however large the zone; one
   *  snapshot: a write during the iteration is not seen. Throws ERR_STORE_NO_ZONE. */
  streamZone(origin: string): AsyncIterable<readonly ResourceRecord[]>;
  /** Keeps (true) or drops (false) the zone's NSEC3 chain for stock secondaries (design §5):
   *  adds or removes NSEC3PARAM at the apex and the whole chain, signed, in one write (serial
   *  bumped, journaled). Resolves with the serial; unchanged when already so. */
  setNsec3(origin: string, enabled: boolean): Promise<ApplyResult>;
  /** Flushes and closes; later calls fail with `ERR_STORE_CLOSED`. */
  close(): Promise<void>;
}
