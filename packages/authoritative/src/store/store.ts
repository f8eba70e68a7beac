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
import type { KeyDirectory } from '../keys/key-directory.js';
import type { SignatureStatus } from './store-keys.js';

/**
 * Records per batch of {@link DiscoveryStore.streamZone}, about (a batch ends with a whole node:
 * an RRset is never split from its RRSIG). Small enough that a batch is a few hundred kilobytes
 * whatever the zone's size, large enough that a transfer fills its messages without waiting.
 */
export const STREAM_BATCH_RECORDS = 1024;

/** What a store object has signed since it opened: see {@link DiscoveryStore.writeCounts}. */
export interface StoreWriteCounts {
  /** SOA RRSIGs made: one per signer per serial step. */
  readonly soaSignatures: number;
}

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
 * For zone transfers (design §9), every write that bumps a zone's serial also stores, in the same
 * transaction, its journal entry (`zone/journal.ts`: what it deleted and added, as IXFR sends it),
 * and a zone that keeps an NSEC3 chain for stock secondaries (NSEC3PARAM at its apex,
 * {@link DiscoveryStore.setNsec3}) has its chain brought up to date (`zone/nsec3-chain.ts`). The
 * chain's entries are nodes of the zone that the answering view never sees: `zoneView` and
 * `readRRset` find nothing at them and they make no name an empty non-terminal; `readZone`,
 * `streamZone` and `journalSince` include them.
 *
 * Names given to the store may be in any case, with or without the trailing dot; the store keeps
 * owner names in canonical form (RFC 4034 §6.2: lowercase, no trailing dot).
 */
export interface DiscoveryStore {
  /**
   * The key directory the store signs with (design §9: keys live apart from data). The store
   * itself holds no secret: its data can be backed up without key material.
   */
  readonly keys: KeyDirectory;
  /** Origins of the zones this store holds, canonical (lowercase, no trailing dot). */
  listZones(): string[];
  /**
   * Creates a zone: SOA (serial 1), NS, DNSKEY (a new combined zone key, written to the key
   * directory created, published and active now, no CDS; `init.keySeed` fixes it) and the apex
   * AUTHKEY records (this DP's prover key and `init.authkeys`), all signed. Rejects with
   * `ERR_STORE_ZONE_EXISTS` when the store already holds the origin, `ERR_STORE_BAD_ZONE` for
   * invalid settings.
   */
  addZone(init: ZoneInit): Promise<ZoneInfo>;
  /**
   * Deletes a zone and its keys (from the key directory). Rejects with `ERR_STORE_NO_ZONE` when
   * there is no such zone.
   */
  removeZone(origin: string): Promise<void>;
  /**
   * The zone's settings and key facts (`keyTag`/`publicKey`: its first current signer), or
   * undefined when the store has no such zone.
   */
  zoneInfo(origin: string): ZoneInfo | undefined;
  /**
   * Brings the zone's keys in line with the key directory at `now` (default the store's clock):
   * computes `keySetAt(keys.zoneKeys(origin), …, now)`; when the DNSKEY, CDS or CDNSKEY RRsets
   * differ from what the zone holds, writes them (signed by every published key; serial bumped,
   * journaled); from then on the zone's other RRsets are signed by the set's `signers`, and
   * {@link resign} re-signs those signed by other keys. Until the next call the store keeps
   * signing with the set computed last, never from its clock on its own. `changed` is true when
   * RRsets were written or the signers changed. Rejects, changing nothing, with
   * `ERR_STORE_KEY_MISSING` when a published key's private half is not in the directory (after
   * a reload) or no key is active, `ERR_STORE_NO_ZONE` for an unknown zone. Opening a store does
   * this for every zone.
   */
  refreshKeys(origin: string, now?: number): Promise<{ serial: number; changed: boolean }>;
  /**
   * The zone's signing state (kept up to date by every write, not computed by a scan per call:
   * cheap to ask every few seconds), undefined when there is no such zone.
   */
  signatureStatus(origin: string): SignatureStatus | undefined;
  /** Every current signer of the zone, in key order ([] for no such zone): online denials. */
  zoneSigners(origin: string): readonly ZoneKey[];
  /** The most specific zone of this store that contains `name`, or undefined. */
  findZone(name: string): string | undefined;
  /** Read access for `lookupZone`, with every authoritative RRset signed. */
  zoneView(origin: string): ZoneView | undefined;
  /** The zone's first current signer (for online signing of compact denials). */
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
   * Every record of the zone, RRSIGs and the NSEC3 chain included (for export and transfer), in
   * canonical order (RFC 4034 §6.1), each RRset followed by its RRSIG. Throws
   * `ERR_STORE_NO_ZONE` for an unknown zone.
   */
  readZone(origin: string): ResourceRecord[];
  /**
   * The zone's records as {@link readZone} gives them (canonical order, RRSIGs and the NSEC3
   * chain included, the SOA first as canonical order puts it), in batches of about
   * {@link STREAM_BATCH_RECORDS}, read in pieces so that memory stays constant however large
   * the zone (the memory store, whose zone is in memory anyway, holds a snapshot of its name
   * index). One snapshot: a write during the iteration is not seen. Throws `ERR_STORE_NO_ZONE`
   * at once for an unknown zone. The LMDB store holds one read transaction per stream while it
   * runs, so it bounds how many run at once and for how long (`STREAM_MAX_OPEN`,
   * `STREAM_MAX_SECONDS`: past either, `ERR_STORE_BUSY`); ending the iteration early releases it.
   */
  streamZone(origin: string): AsyncIterable<readonly ResourceRecord[]>;
  /**
   * Journal entries leading from serial `from` to the current serial, oldest first: `[]` when
   * `from` is current, undefined when the journal does not reach back to `from` (or `from` is
   * not a serial the zone had): a transfer then sends the whole zone. Each entry's `to` is the
   * next one's `from`. Rejects with `ERR_STORE_NO_ZONE` for an unknown zone.
   */
  journalSince(origin: string, from: number): Promise<JournalEntry[] | undefined>;
  /**
   * Keeps (true) or drops (false) the zone's NSEC3 chain for stock secondaries (design §5):
   * adds or removes NSEC3PARAM at the apex and the whole chain, signed, in one write (serial
   * bumped, journaled). Resolves with the serial; unchanged when the zone is already so. A zone
   * with a ZONEMD keeps its chain: dropping it rejects with `ERR_STORE_BAD_CHANGE`.
   */
  setNsec3(origin: string, enabled: boolean): Promise<ApplyResult>;
  /**
   * Applies changes to one zone atomically: each change replaces or deletes one RRset. Signs the
   * changed RRsets and resolves after the commit is durable. Concurrent applies and operations
   * share group commits: a commit steps the serial of each zone it changes once, and signs its
   * SOA once, however many of them it holds, and each resolves with the serial of its commit,
   * the one served once it has resolved. One that fails rejects alone, having changed nothing;
   * the others commit. Only a fault of the store itself (a full disk, a zone whose SOA is gone)
   * fails the whole commit, and with it every write it held.
   */
  apply(origin: string, changes: readonly RRsetChange[]): Promise<ApplyResult>;
  /**
   * Plans and applies one operation (`mapping-ops.ts`) inside one write transaction: reads the
   * RRsets and anti-replay records it depends on there, and commits the changed RRsets (signed,
   * serial bumped once per group commit, as {@link apply}) and anti-replay records together. A
   * refused operation resolves with a `refused` outcome and changes nothing; one that has
   * nothing to change resolves `applied` with the serial of its group commit (unchanged when
   * nothing in the group changed), once everything before it is durable. Malformed operations
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
   * store's refresh margin), and every RRset whose RRSIGs are not exactly by the zone's current
   * signers (after a key switch, {@link refreshKeys}), NSEC3 chains included, in writes of at most
   * `RESIGN_MAX_RRSETS_PER_WRITE` RRsets each (each bumps the serial and is journaled); returns
   * how many RRsets it re-signed. First it deletes, per zone, the MAP records whose mapping has
   * expired (min(`exp`, `att.exp`) ≤ now by the store's clock, R9) as ordinary journaled writes,
   * so secondaries drop them by IXFR (not counted in the result). It also prunes the
   * anti-replay records whose time has passed, `REPLAY_PRUNE_BATCH` per transaction, without
   * bumping any serial.
   */
  resign(before?: number): Promise<number>;
  /**
   * Counts of this store object's signing work since it opened (for tests and diagnostics):
   * how a group commit shows that it signs each zone's SOA once. Absent where the writes run
   * elsewhere (the LMDB store with a writer thread).
   */
  writeCounts?(): StoreWriteCounts;
  /** Flushes and closes; later calls fail with `ERR_STORE_CLOSED`. */
  close(): Promise<void>;
}
