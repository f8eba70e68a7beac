import {
  generateKeyPair,
  isSubdomain,
  keyPairFromSeed,
  parentName,
  systemClock,
  type Clock,
  type Ed25519KeyPair,
  type ResourceRecord,
  type RRType,
  type ZoneKey,
  type ZoneView,
} from '@mimi-discovery/common';
import {
  isActive,
  prepareOperation,
  runOperation,
  type OperationOutcome,
  type ReplayReader,
  type ReplayRecord,
  type StoreOperation,
} from './mapping-ops.js';
import { replayKey, replayReader } from './replay-codec.js';
import type { DiscoveryStore } from './store.js';
import { StoreError, noZoneError } from './store-error.js';
import type { ApplyResult, RRsetChange, ZoneInfo, ZoneInit } from './store-types.js';
import { nodeKey } from './node-codec.js';
import {
  CHANGE_LOG_ENTRIES,
  changedNames,
  changesBetween,
  normalizeChanges,
  type ChangedNames,
  type StoreChanges,
} from '../zone/zone-changes.js';
import { ownerName, ownerOrUndefined, zoneOrigin } from '../zone/owner-name.js';
import {
  DEFAULT_PROVER_KEY_LIFETIME_SECONDS,
  checkProverSeed,
  initialZone,
  newZoneKey,
  nodeRecords,
  planApply,
  planResign,
  signatureValidityPolicy,
  toZoneNode,
  zoneSigner,
  type SignatureValidityPolicy,
  type StoredNode,
  type ZoneReader,
  type ZoneWrites,
} from '../zone/zone-signer.js';

/**
 * A {@link DiscoveryStore} held in memory: for ephemeral servers and tests. Writes are atomic
 * (computed in full, then applied in one synchronous step) and "durable" as soon as they are
 * applied, which is all a process-lifetime store can promise. An operation is planned and
 * applied in that same synchronous step, so it sees every write before it; its anti-replay
 * records live in a map beside the zones, for the life of the store.
 *
 * Each zone keeps its nodes in a map by owner name and, for every name with nodes below it, how
 * many there are, so `hasDescendants` (empty non-terminals) is one map read. A delegation that
 * appears or goes away scans the zone's names once; everything else touches only the names it
 * changes and their ancestors.
 */

/** Options of {@link createMemoryStore}. */
export interface MemoryStoreOptions {
  /** Clock in whole seconds since the epoch; default `systemClock`. */
  now?: Clock;
  /** Signature lifetime and renewal margin; default 14 days, renewed 7 days before expiry. */
  signatureValidity?: Partial<SignatureValidityPolicy>;
  /** Seed of this DP's prover key (32 octets); a new random key otherwise. */
  proverSeed?: Uint8Array;
  /** Lifetime of the prover key's AUTHKEY entry in new zones; default 10 years. */
  proverKeyLifetimeSeconds?: number;
  /**
   * Called synchronously inside each write, right after it is applied to memory, with what
   * changed (see {@link MemoryCommit}): how a replica (`createMemoryReplica`) hands its writes
   * to the store it mirrors.
   */
  onCommit?: (change: MemoryCommit) => void;
}

interface MemoryZone {
  readonly key: ZoneKey;
  readonly nodes: Map<string, StoredNode>;
  /** For each name with nodes strictly below it (at or below the origin), how many. */
  readonly below: Map<string, number>;
}

/** Creates an empty memory store. */
export function createMemoryStore(options: MemoryStoreOptions = {}): DiscoveryStore {
  return new MemoryStore(options);
}

class MemoryStore implements DiscoveryStore {
  readonly #zones = new Map<string, MemoryZone>();
  readonly #now: Clock;
  readonly #policy: SignatureValidityPolicy;
  readonly #prover: Ed25519KeyPair;
  readonly #proverLifetime: number;
  #closed = false;
  #generation = 0;
  /** What each of the last writes changed, by generation (oldest first). */
  readonly #log = new Map<number, ChangedNames>();
  /** Anti-replay records by their table key (as the LMDB store keys them), in latin1. */
  readonly #replay = new Map<string, ReplayRecord>();

  constructor(options: MemoryStoreOptions) {
    this.#now = options.now ?? systemClock;
    this.#policy = signatureValidityPolicy(options.signatureValidity);
    checkProverSeed(options.proverSeed);
    this.#prover =
      options.proverSeed === undefined ? generateKeyPair() : keyPairFromSeed(options.proverSeed);
    this.#proverLifetime = options.proverKeyLifetimeSeconds ?? DEFAULT_PROVER_KEY_LIFETIME_SECONDS;
    this.#onCommit = options.onCommit;
  }

  listZones(): string[] {
    this.#open();
    return [...this.#zones.keys()].sort();
  }

  async addZone(init: ZoneInit): Promise<ZoneInfo> {
    this.#open();
    const origin = zoneOrigin(init.origin, 'ERR_STORE_BAD_ZONE');
    if (this.#zones.has(origin)) {
      throw new StoreError('ERR_STORE_ZONE_EXISTS', `the store already holds zone ${origin}`);
    }
    const key = newZoneKey(origin, init.keySeed);
    const now = this.#now();
    const apex = initialZone(init, {
      key,
      proverPublicKey: this.#prover.publicKey,
      proverNotAfter: Math.min(now + this.#proverLifetime, 2 ** 32 - 1),
      sign: zoneSigner(key, now, this.#policy),
    });
    this.#zones.set(origin, { key, nodes: new Map([[origin, apex]]), below: new Map() });
    this.#changed('all');
    this.#onCommit?.({
      kind: 'zone-added',
      origin,
      keySeed: key.keyPair.secretKey,
      writes: new Map([[origin, apex]]),
    });
    return this.#info(origin) as ZoneInfo;
  }

  async removeZone(origin: string): Promise<void> {
    this.#open();
    const apex = zoneOrigin(origin, 'ERR_STORE_NO_ZONE');
    if (!this.#zones.delete(apex)) throw noZoneError(apex);
    this.#changed('all');
    this.#onCommit?.({ kind: 'zone-removed', origin: apex });
  }

  zoneInfo(origin: string): ZoneInfo | undefined {
    this.#open();
    return this.#info(ownerOrUndefined(origin));
  }

  findZone(name: string): string | undefined {
    this.#open();
    for (let n = ownerOrUndefined(name); n !== undefined; n = parentName(n)) {
      if (this.#zones.has(n)) return n;
    }
    return undefined;
  }

  zoneView(origin: string): ZoneView | undefined {
    this.#open();
    const apex = ownerOrUndefined(origin);
    const zone = apex === undefined ? undefined : this.#zones.get(apex);
    if (apex === undefined || zone === undefined) return undefined;
    return {
      origin: apex,
      node: (name) => {
        const node = zone.nodes.get(ownerName(name));
        return node === undefined ? undefined : toZoneNode(node);
      },
      hasDescendants: (name) => (zone.below.get(ownerName(name)) ?? 0) > 0,
    };
  }

  zoneKey(origin: string): ZoneKey | undefined {
    this.#open();
    const apex = ownerOrUndefined(origin);
    return apex === undefined ? undefined : this.#zones.get(apex)?.key;
  }

  proverKey(): Ed25519KeyPair {
    this.#open();
    return this.#prover;
  }

  generation(): number {
    return this.#generation;
  }

  changesSince(generation: number): StoreChanges {
    return changesBetween(generation, this.#generation, (g) => this.#log.get(g));
  }

  /** Counts a write and logs what it changed. */
  #changed(names: ChangedNames): void {
    this.#generation++;
    this.#log.set(this.#generation, names);
    this.#log.delete(this.#generation - CHANGE_LOG_ENTRIES);
  }

  readRRset(origin: string, name: string, type: RRType): ResourceRecord[] {
    this.#open();
    const { zone, apex } = this.#zone(origin);
    const owner = ownerName(name);
    if (!isSubdomain(owner, apex)) {
      throw new StoreError('ERR_STORE_OUT_OF_ZONE', `${owner} is not in zone ${apex}`);
    }
    return [...(zone.nodes.get(owner)?.get(type)?.records ?? [])];
  }

  readZone(origin: string): ResourceRecord[] {
    this.#open();
    const { zone } = this.#zone(origin);
    return sortedNames(zone.nodes.keys()).flatMap((name) =>
      nodeRecords(zone.nodes.get(name) as StoredNode),
    );
  }

  async apply(origin: string, changes: readonly RRsetChange[]): Promise<ApplyResult> {
    this.#open();
    const { zone, apex } = this.#zone(origin);
    const normalized = normalizeChanges(apex, changes);
    const { writes, serial } = planApply(
      reader(apex, zone),
      normalized,
      zoneSigner(zone.key, this.#now(), this.#policy),
    );
    const undo = this.#undo(zone, writes, []);
    commit(apex, zone, writes);
    this.#changed(changedNames(normalized, writes.keys()));
    this.#emitWrite(apex, undo, writes, [], changedNames(normalized, writes.keys()));
    return { serial };
  }

  async applyOperation(origin: string, operation: StoreOperation): Promise<OperationOutcome> {
    this.#open();
    const { zone, apex } = this.#zone(origin);
    const prepared = prepareOperation(apex, operation);
    const run = runOperation(reader(apex, zone), this.#replayReader(), prepared, () =>
      zoneSigner(zone.key, this.#now(), this.#policy),
    );
    const undo = this.#undo(zone, run.writes, run.records);
    commit(apex, zone, run.writes);
    for (const record of run.records) this.#replay.set(id(replayKey(record)), record);
    if (run.changed !== undefined) this.#changed(run.changed);
    this.#emitWrite(apex, undo, run.writes, run.records, run.changed);
    return run.outcome;
  }

  replayRecords(limit = Infinity): ReplayRecord[] {
    this.#open();
    return [...this.#replay.keys()]
      .sort()
      .slice(0, limit)
      .map((key) => this.#replay.get(key) as ReplayRecord);
  }

  #replayReader(): ReplayReader {
    return replayReader((key) => this.#replay.get(id(key)));
  }

  async resign(before?: number): Promise<number> {
    this.#open();
    const now = this.#now();
    // Expired anti-replay records go in the same pass (one scan: the store is ephemeral).
    for (const [key, record] of this.#replay) if (!isActive(record, now)) this.#replay.delete(key);
    const limit = before ?? now + this.#policy.refreshBeforeSeconds;
    let count = 0;
    for (const [apex, zone] of this.#zones) {
      const plan = planResign(
        reader(apex, zone),
        sortedNames(zone.nodes.keys()),
        limit,
        zoneSigner(zone.key, now, this.#policy),
      );
      const undo = this.#undo(zone, plan.writes, []);
      commit(apex, zone, plan.writes);
      if (plan.count > 0) this.#changed('all');
      this.#emitWrite(apex, undo, plan.writes, [], 'all');
      count += plan.count;
    }
    return count;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#zones.clear();
    this.#replay.clear();
  }

  #open(): void {
    if (this.#closed) throw new StoreError('ERR_STORE_CLOSED', 'the store is closed');
  }

  #zone(origin: string): { zone: MemoryZone; apex: string } {
    const apex = zoneOrigin(origin, 'ERR_STORE_NO_ZONE');
    const zone = this.#zones.get(apex);
    if (zone === undefined) throw noZoneError(apex);
    return { zone, apex };
  }

  // -------------------------------------------------------------------------------------------
  // Replica hooks (`createMemoryReplica`, for the PostgreSQL store): data loaded as it is stored
  // elsewhere, and what each write changed, with what it replaced so that it can be undone.

  readonly #onCommit: ((change: MemoryCommit) => void) | undefined;

  /** What `writes` and `records` are about to replace (nothing to keep without a hook). */
  #undo(
    zone: MemoryZone,
    writes: ZoneWrites,
    records: readonly ReplayRecord[],
  ): { nodes: ZoneWrites; replay: (ReplayRecord | undefined)[] } | undefined {
    if (this.#onCommit === undefined) return undefined;
    const nodes: ZoneWrites = new Map();
    for (const name of writes.keys()) nodes.set(name, zone.nodes.get(name));
    return { nodes, replay: records.map((r) => this.#replay.get(id(replayKey(r)))) };
  }

  #emitWrite(
    origin: string,
    undo: { nodes: ZoneWrites; replay: (ReplayRecord | undefined)[] } | undefined,
    writes: ZoneWrites,
    records: readonly ReplayRecord[],
    changed: ChangedNames | undefined,
  ): void {
    if (undo === undefined || (writes.size === 0 && records.length === 0)) return;
    this.#onCommit?.({
      kind: 'write',
      origin,
      before: undo.nodes,
      writes,
      replay: records,
      replayBefore: undo.replay,
      changed,
    });
  }

  /** {@link MemoryReplica.loadNodes}. */
  loadNodes(origin: string, nodes: ZoneWrites, changed?: ChangedNames): void {
    this.#open();
    const zone = this.#zones.get(origin);
    if (zone === undefined) throw noZoneError(origin);
    commit(origin, zone, nodes);
    this.#changed(changed ?? [...nodes.keys()]);
  }

  /** {@link MemoryReplica.loadZone}. */
  loadZone(origin: string, keySeed: Uint8Array, nodes: ZoneWrites): void {
    this.#open();
    const zone: MemoryZone = {
      key: newZoneKey(origin, keySeed),
      nodes: new Map(),
      below: new Map(),
    };
    commit(origin, zone, nodes);
    this.#zones.set(origin, zone);
    this.#changed('all');
  }

  /** {@link MemoryReplica.dropZone}. */
  dropZone(origin: string): void {
    this.#open();
    if (this.#zones.delete(origin)) this.#changed('all');
  }

  /** {@link MemoryReplica.loadReplay}. */
  loadReplay(records: readonly ReplayRecord[]): void {
    this.#open();
    for (const record of records) this.#replay.set(id(replayKey(record)), record);
  }

  /** {@link MemoryReplica.dropReplay}. */
  dropReplay(records: readonly ReplayRecord[]): void {
    this.#open();
    for (const record of records) this.#replay.delete(id(replayKey(record)));
  }

  /** {@link MemoryReplica.pruneReplay}. */
  pruneReplay(now: number): void {
    this.#open();
    for (const [key, record] of this.#replay) if (!isActive(record, now)) this.#replay.delete(key);
  }

  // -------------------------------------------------------------------------------------------

  #info(origin: string | undefined): ZoneInfo | undefined {
    const zone = origin === undefined ? undefined : this.#zones.get(origin);
    if (origin === undefined || zone === undefined) return undefined;
    const soa = zone.nodes.get(origin)?.get('SOA')?.records[0];
    return {
      origin,
      serial: soa?.type === 'SOA' ? soa.data.serial : 0,
      keyTag: zone.key.keyTag,
      publicKey: zone.key.keyPair.publicKey,
    };
  }
}

// ---------------------------------------------------------------------------------------------
// Replica (the PostgreSQL store's in-memory copy, `pg-store.ts`)

/**
 * What one write of a memory store changed, as its `onCommit` option hears it. `before` holds
 * the nodes as they were (undefined: absent) for every name of `writes`, and `replayBefore` the
 * anti-replay record each of `replay` replaced, so that a write that could not be made durable
 * elsewhere can be put back; `changed` is what the write logged for `changesSince`.
 */
export type MemoryCommit =
  | { kind: 'zone-added'; origin: string; keySeed: Uint8Array; writes: ZoneWrites }
  | { kind: 'zone-removed'; origin: string }
  | {
      kind: 'write';
      origin: string;
      before: ZoneWrites;
      writes: ZoneWrites;
      replay: readonly ReplayRecord[];
      replayBefore: readonly (ReplayRecord | undefined)[];
      changed: ChangedNames | undefined;
    };

/**
 * A memory store that mirrors data kept elsewhere (the PostgreSQL store's replica): besides the
 * store contract, it takes data as stored — no signing, no serial bump — and hands every write
 * it makes to its `onCommit`.
 */
export interface MemoryReplica extends DiscoveryStore {
  /**
   * Puts nodes into the zone as they are (undefined: the node is deleted); bumps the generation
   * and logs `changed` (default: the names of `nodes`). Throws `ERR_STORE_NO_ZONE`.
   */
  loadNodes(origin: string, nodes: ZoneWrites, changed?: ChangedNames): void;
  /** Creates (or replaces) a zone with its key seed and nodes, as they are. */
  loadZone(origin: string, keySeed: Uint8Array, nodes: ZoneWrites): void;
  /** Forgets a zone (nothing when absent). */
  dropZone(origin: string): void;
  /** Puts anti-replay records as they are, each replacing the one under its key. */
  loadReplay(records: readonly ReplayRecord[]): void;
  /** Forgets the anti-replay records under the keys of `records`. */
  dropReplay(records: readonly ReplayRecord[]): void;
  /** Forgets the anti-replay records whose time has passed at `now`. */
  pruneReplay(now: number): void;
}

/** Creates an empty replica that reports each of its writes to `options.onCommit`. */
export function createMemoryReplica(
  options: MemoryStoreOptions & { onCommit(change: MemoryCommit): void },
): MemoryReplica {
  return new MemoryStore(options);
}

function reader(origin: string, zone: MemoryZone): ZoneReader {
  return {
    origin,
    node: (name) => zone.nodes.get(name),
    namesBelow: (name) => [...zone.nodes.keys()].filter((n) => n !== name && isSubdomain(n, name)),
  };
}

/** Applies computed writes in one synchronous step, keeping the descendant counts. */
function commit(origin: string, zone: MemoryZone, writes: ZoneWrites): void {
  for (const [name, node] of writes) {
    const existed = zone.nodes.has(name);
    if (node === undefined) zone.nodes.delete(name);
    else zone.nodes.set(name, node);
    const delta = (node === undefined ? 0 : 1) - (existed ? 1 : 0);
    if (delta === 0) continue;
    for (let p = parentName(name); p !== undefined && isSubdomain(p, origin); p = parentName(p)) {
      const count = (zone.below.get(p) ?? 0) + delta;
      if (count > 0) zone.below.set(p, count);
      else zone.below.delete(p);
      if (p === origin) break;
    }
  }
}

/** A table key as a map key; latin1 keeps the octets' order. */
function id(key: Buffer): string {
  return key.toString('latin1');
}

/** Names in canonical order (RFC 4034 §6.1). */
function sortedNames(names: Iterable<string>): string[] {
  return [...names]
    .map((name) => ({ name, key: nameSortKey(name) }))
    .sort((a, b) => Buffer.compare(a.key, b.key))
    .map((entry) => entry.name);
}

function nameSortKey(name: string): Buffer {
  // The LMDB key of a name orders names canonically; reuse it with an empty origin.
  return nodeKey('.', name);
}
