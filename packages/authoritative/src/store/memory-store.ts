import {
  computeKeyTag,
  isSubdomain,
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
  GROUP_MAX_WRITES,
  applyPlan,
  expiredMappingsChange,
  isActive,
  mayHoldExpiredMappings,
  operationPlan,
  prepareOperation,
  type GroupedWrite,
  type OperationOutcome,
  type ReplayRecord,
  type StoreOperation,
} from './mapping-ops.js';
import { replayKey, replayReader } from './replay-codec.js';
import { STREAM_BATCH_RECORDS, type DiscoveryStore, type StoreWriteCounts } from './store.js';
import { StoreError, noZoneError } from './store-error.js';
import type { ApplyResult, RRsetChange, ZoneInfo, ZoneInit } from './store-types.js';
import { nodeKey } from './node-codec.js';
import {
  checkProverAgainst,
  firstKey,
  keyDirectoryFault,
  firstKeySet,
  saveFirstKey,
  staleRRsets,
  zoneKeySet,
  type SignatureStatus,
} from './store-keys.js';
import { createMemoryKeyDirectory, type KeyDirectory } from '../keys/key-directory.js';
import type { ZoneKeySet } from '../keys/key-set.js';
import {
  CHANGE_LOG_ENTRIES,
  changedNames,
  changesBetween,
  normalizeChanges,
  changedUnion,
  type ChangedUnion,
  type ChangedNames,
  type StoreChanges,
} from '../zone/zone-changes.js';
import {
  decodeJournalEntry,
  encodeJournalEntry,
  journalEntry,
  journalLimits,
  type JournalEntry,
  type JournalLimits,
} from '../zone/journal.js';
import { chainLabel, chainOwner } from '../zone/nsec3-chain.js';
import { ownerName, ownerOrUndefined, zoneOrigin } from '../zone/owner-name.js';
import { SortedMap } from '../zone/sorted-map.js';
import {
  DEFAULT_PROVER_KEY_LIFETIME_SECONDS,
  RESIGN_MAX_RRSETS_PER_WRITE,
  earliestExpiration,
  initialZone,
  isDue,
  nodeRecords,
  countingSigner,
  planApply,
  planKeys,
  planNsec3,
  planResign,
  planSerial,
  signatureValidityPolicy,
  toZoneNode,
  zoneOverlay,
  zoneSerial,
  zoneSigner,
  type SignatureValidityPolicy,
  type SigningCounts,
  type ZoneOverlay,
  type StoredNode,
  type ZoneReader,
  type ZoneSigner,
  type ZoneWrites,
} from '../zone/zone-signer.js';

/**
 * A {@link DiscoveryStore} held in memory: for ephemeral servers and tests. Writes are atomic
 * (computed in full, then applied in one synchronous step) and "durable" as soon as they are
 * applied, which is all a process-lifetime store can promise. An operation is planned and
 * applied in that same synchronous step, so it sees every write before it; its anti-replay
 * records live in a map beside the zones, for the life of the store.
 *
 * Group commit, as the LMDB store groups: the `apply` and `applyOperation` calls of one event
 * turn (at most `GROUP_MAX_WRITES`) are planned in one step a microtask later, each over the
 * ones before it, and each zone they changed gets one SOA serial step, one SOA RRSIG, one
 * journal entry and one change-log generation for them all (`zone-signer.ts` `planSerial`). A
 * replica (`createMemoryReplica`) hands such a group to its store as one write.
 *
 * Each zone keeps its nodes in a map by owner name, the same nodes in canonical order (a
 * `SortedMap` keyed as the LMDB store keys them: the names below a name are one range, and a
 * zone is read or streamed in order without sorting), and, for every name with nodes below it,
 * how many there are, so `hasDescendants` (empty non-terminals) is one map read. The entries of
 * the zone's NSEC3 chain (`nsec3-chain.ts`) are kept apart, in a sorted map by label (hash
 * order), which answering never reads. Each zone's journal (`journal.ts`) is a list of encoded
 * entries, trimmed from the oldest by the store's `journal` limits.
 */

/** Options of {@link createMemoryStore}. */
export interface MemoryStoreOptions {
  /** Clock in whole seconds since the epoch; default `systemClock`. */
  now?: Clock;
  /** Signature lifetime and renewal margin; default 14 days, renewed 7 days before expiry. */
  signatureValidity?: Partial<SignatureValidityPolicy>;
  /**
   * The key directory the zones are signed from; default a memory one (made with `proverSeed`).
   * With both, `proverSeed` must be the directory's prover key (`ERR_STORE_PROVER_KEY`).
   */
  keys?: KeyDirectory;
  /** Seed of this DP's prover key (32 octets); a new random key otherwise. */
  proverSeed?: Uint8Array;
  /** Lifetime of the prover key's AUTHKEY entry in new zones; default 10 years. */
  proverKeyLifetimeSeconds?: number;
  /** How much of each zone's journal to keep; default `JOURNAL_MAX_ENTRIES`, `JOURNAL_MAX_OCTETS`. */
  journal?: Partial<JournalLimits>;
  /**
   * Called synchronously inside each write, right after it is applied to memory, with what
   * changed (see {@link MemoryCommit}): how a replica (`createMemoryReplica`) hands its writes
   * to the store it mirrors.
   */
  onCommit?: (change: MemoryCommit) => void;
}

interface MemoryZone {
  /** The key set the zone is signed with, as its last `refreshKeys` computed it. */
  keySet: ZoneKeySet;
  /** A signer of that set, for telling which RRsets it has not signed yet. */
  current: ZoneSigner;
  /** RRsets whose RRSIGs are not exactly by `keySet.signers`. */
  pending: number;
  /** The earliest RRSIG expiration (a lower bound between re-signing passes). */
  earliest: number | undefined;
  /** The zone's data nodes by owner name. */
  readonly nodes: Map<string, StoredNode>;
  /** The same nodes in canonical order, by {@link sortKey}. */
  readonly ordered: SortedMap<OrderedNode>;
  /** For each name with nodes strictly below it (at or below the origin), how many. */
  readonly below: Map<string, number>;
  /** The NSEC3 chain's nodes by label, in hash order. */
  readonly chain: SortedMap<StoredNode>;
  readonly journal: MemoryJournal;
}

interface OrderedNode {
  readonly name: string;
  readonly node: StoredNode;
}

/** A new zone holding only its apex. */
function newZone(origin: string, keySet: ZoneKeySet, apex: StoredNode): MemoryZone {
  const zone: MemoryZone = {
    keySet,
    current: currentSigner(keySet),
    pending: 0,
    earliest: undefined,
    nodes: new Map(),
    ordered: new SortedMap(),
    below: new Map(),
    chain: new SortedMap(),
    journal: new MemoryJournal(),
  };
  commit(origin, zone, new Map([[origin, apex]]));
  countSignatures(zone);
  return zone;
}

/** A signer of `keySet` used only to compare signatures (its validity window is never used). */
function currentSigner(keySet: ZoneKeySet): ZoneSigner {
  return zoneSigner(keySet, 0, { validitySeconds: 2, refreshBeforeSeconds: 1 });
}

/** Counts a zone's stale RRsets and its earliest expiration afresh, in one scan. */
function countSignatures(zone: MemoryZone): void {
  let pending = 0;
  let earliest: number | undefined;
  const visit = (node: StoredNode): void => {
    pending += staleRRsets(node, zone.current);
    for (const rrset of node.values()) {
      const e = earliestExpiration(rrset.signatures);
      if (e !== undefined && (earliest === undefined || e < earliest)) earliest = e;
    }
  };
  for (const node of zone.nodes.values()) visit(node);
  for (const [, node] of zone.chain.entries()) visit(node);
  zone.pending = pending;
  zone.earliest = earliest;
}

/** Creates an empty memory store. */
export function createMemoryStore(options: MemoryStoreOptions = {}): DiscoveryStore {
  return new MemoryStore(options);
}

class MemoryStore implements DiscoveryStore {
  readonly #zones = new Map<string, MemoryZone>();
  readonly #now: Clock;
  readonly #policy: SignatureValidityPolicy;
  readonly keys: KeyDirectory;
  readonly #proverLifetime: number;
  readonly #journalLimits: JournalLimits;
  #closed = false;
  #generation = 0;
  /** What each of the last writes changed, by generation (oldest first). */
  readonly #log = new Map<number, ChangedNames>();
  /** Applies and operations waiting for this event turn's group commit. */
  #queued: GroupedWrite[] = [];
  /** Whether a microtask is queued to run `#queued`. */
  #groupQueued = false;
  /** SOA signatures made by this store (`writeCounts`). */
  readonly #counts: SigningCounts = { soaSignatures: 0 };
  /** Anti-replay records by their table key (as the LMDB store keys them), in latin1. */
  readonly #replay = new Map<string, ReplayRecord>();

  constructor(options: MemoryStoreOptions) {
    this.#now = options.now ?? systemClock;
    this.#policy = signatureValidityPolicy(options.signatureValidity);
    if (options.keys === undefined) {
      this.keys = createMemoryKeyDirectory(
        options.proverSeed === undefined ? {} : { proverSeed: checkedSeed(options.proverSeed) },
      );
    } else {
      checkProverAgainst(options.keys, options.proverSeed);
      this.keys = options.keys;
    }
    this.#proverLifetime = options.proverKeyLifetimeSeconds ?? DEFAULT_PROVER_KEY_LIFETIME_SECONDS;
    this.#journalLimits = journalLimits(options.journal);
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
    const key = firstKey(origin, init.keySeed);
    const keySet = firstKeySet(key);
    const now = this.#now();
    const apex = initialZone(init, {
      dnskeys: keySet.dnskeys,
      proverPublicKey: this.keys.proverKey().publicKey,
      proverNotAfter: Math.min(now + this.#proverLifetime, 2 ** 32 - 1),
      sign: zoneSigner(keySet, now, this.#policy),
    });
    // The key is written before the zone exists: a zone is never without its key.
    await saveFirstKey(this.keys, key, now);
    if (this.#zones.has(origin)) {
      throw new StoreError('ERR_STORE_ZONE_EXISTS', `the store already holds zone ${origin}`);
    }
    this.#zones.set(origin, newZone(origin, keySet, apex));
    this.#changed('all');
    this.#onCommit?.({
      kind: 'zone-added',
      origin,
      writes: new Map([[origin, apex]]),
    });
    return this.#info(origin) as ZoneInfo;
  }

  async removeZone(origin: string): Promise<void> {
    this.#open();
    const apex = zoneOrigin(origin, 'ERR_STORE_NO_ZONE');
    if (!this.#zones.has(apex)) throw noZoneError(apex);
    this.#zones.delete(apex);
    this.#changed('all');
    this.#onCommit?.({ kind: 'zone-removed', origin: apex });
    // The replica of a shared store leaves the keys to the store it mirrors.
    if (this.#onCommit === undefined) await this.keys.removeZone(apex);
  }

  async refreshKeys(origin: string, now?: number): Promise<{ serial: number; changed: boolean }> {
    this.#open();
    const { zone, apex } = this.#zone(origin);
    const at = now ?? this.#now();
    // Timings may have been changed by another process (`keys roll`, the roller).
    try {
      this.keys.reload();
    } catch (error) {
      throw keyDirectoryFault(error);
    }
    const keySet = zoneKeySet(this.keys, apex, at);
    const plan = planKeys(reader(apex, zone), keySet, zoneSigner(keySet, at, this.#policy));
    const signersChanged =
      tagsOf(keySet.signers) !== tagsOf(zone.keySet.signers) ||
      tagsOf(keySet.dnskeySigners) !== tagsOf(zone.keySet.dnskeySigners);
    zone.keySet = keySet;
    zone.current = currentSigner(keySet);
    if (plan.serial !== undefined) this.#commitWrite(apex, zone, plan.writes, [], 'all');
    if (signersChanged) countSignatures(zone);
    return {
      serial: this.#info(apex)?.serial ?? 0,
      changed: plan.serial !== undefined || signersChanged,
    };
  }

  signatureStatus(origin: string): SignatureStatus | undefined {
    this.#open();
    const apex = ownerOrUndefined(origin);
    const zone = apex === undefined ? undefined : this.#zones.get(apex);
    if (zone === undefined) return undefined;
    return {
      earliestExpiry: zone.earliest,
      pendingResign: zone.pending,
      signers: zone.keySet.signers.map((k) => k.keyTag),
    };
  }

  zoneSigners(origin: string): readonly ZoneKey[] {
    this.#open();
    const apex = ownerOrUndefined(origin);
    return (apex === undefined ? undefined : this.#zones.get(apex)?.keySet.signers) ?? [];
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
    return apex === undefined ? undefined : this.#zones.get(apex)?.keySet.signers[0];
  }

  proverKey(): Ed25519KeyPair {
    this.#open();
    return this.keys.proverKey();
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
    const { zone, apex } = this.#zone(origin);
    const out: ResourceRecord[] = [];
    for (const node of nodesInOrder(apex, zone.ordered, zone.chain)) out.push(...nodeRecords(node));
    return out;
  }

  streamZone(origin: string): AsyncIterable<readonly ResourceRecord[]> {
    this.#open();
    const { zone, apex } = this.#zone(origin);
    // A snapshot of both orders: their chunks are never changed in place, so later writes do
    // not reach it (and the nodes it holds are never changed in place either).
    const nodes = nodesInOrder(apex, zone.ordered.snapshot(), zone.chain.snapshot());
    const open = (): void => this.#open();
    return {
      async *[Symbol.asyncIterator]() {
        let batch: ResourceRecord[] = [];
        for (const node of nodes) {
          batch.push(...nodeRecords(node));
          if (batch.length < STREAM_BATCH_RECORDS) continue;
          open();
          yield batch;
          batch = [];
        }
        open();
        if (batch.length > 0) yield batch;
      },
    };
  }

  async journalSince(origin: string, from: number): Promise<JournalEntry[] | undefined> {
    this.#open();
    const { zone, apex } = this.#zone(origin);
    return zone.journal.since(from, this.#info(apex)?.serial ?? 0);
  }

  async setNsec3(origin: string, enabled: boolean): Promise<ApplyResult> {
    this.#open();
    const { zone, apex } = this.#zone(origin);
    const plan = planNsec3(
      reader(apex, zone),
      enabled,
      signerOf(apex, zone, this.#now(), this.#policy),
    );
    if (plan.serial === undefined) return { serial: this.#info(apex)?.serial ?? 0 };
    this.#commitWrite(apex, zone, plan.writes, [], 'all');
    return { serial: plan.serial };
  }

  async apply(origin: string, changes: readonly RRsetChange[]): Promise<ApplyResult> {
    this.#open();
    const { apex } = this.#zone(origin);
    const normalized = normalizeChanges(apex, changes);
    return (await this.#grouped(apex, applyPlan(normalized))) as ApplyResult;
  }

  /** SOA signatures this store made since it was created: one per signer per serial step. */
  writeCounts(): StoreWriteCounts {
    return { ...this.#counts };
  }

  /** Queues an apply or an operation of zone `apex` for this event turn's group commit. */
  #grouped(apex: string, plan: GroupedWrite['plan']): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.#queued.push({ apex, plan, resolve, reject });
      if (this.#groupQueued) return;
      this.#groupQueued = true;
      queueMicrotask(() => this.#drain());
    });
  }

  /** Runs the queued writes as groups of at most `GROUP_MAX_WRITES`. */
  #drain(): void {
    this.#groupQueued = false;
    // Bounded: each step takes at least one write off a queue no write is added to meanwhile.
    while (this.#queued.length > 0) {
      this.#runGroup(this.#queued.splice(0, GROUP_MAX_WRITES));
    }
  }

  /**
   * Plans the writes of one group in order, each over its zone as the ones before it left it,
   * then completes each zone changed with one serial step (`planSerial`) and commits it, and
   * settles each write. A write that throws adds nothing and rejects with its error. A zone
   * that cannot be completed (`planSerial` throws: its SOA is gone, a fault) commits nothing of
   * the group, and every write of it rejects with that error.
   */
  #runGroup(group: readonly GroupedWrite[]): void {
    const now = this.#now();
    const settled: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    interface GroupZone {
      zone: MemoryZone;
      overlay: ZoneOverlay;
      sign: () => ZoneSigner;
      records: ReplayRecord[];
      changed: ChangedUnion;
      members: Array<{ index: number; result: (serial: number) => unknown }>;
    }
    const zones = new Map<string, GroupZone>();
    // Records of the group's earlier operations, seen by its later ones before they are stored.
    const planned = new Map<string, ReplayRecord>();
    const replay = replayReader((key) => planned.get(id(key)) ?? this.#replay.get(id(key)));
    group.forEach((write, index) => {
      try {
        let entry = zones.get(write.apex);
        if (entry === undefined) {
          const { zone } = this.#zone(write.apex);
          let signer: ZoneSigner | undefined;
          entry = {
            zone,
            overlay: zoneOverlay(reader(write.apex, zone)),
            sign: () =>
              (signer ??= countingSigner(
                signerOf(write.apex, zone, now, this.#policy),
                this.#counts,
              )),
            records: [],
            changed: changedUnion(),
            members: [],
          };
          zones.set(write.apex, entry);
        }
        const plan = write.plan(entry.overlay, replay, entry.sign);
        entry.overlay.merge(plan.writes);
        for (const record of plan.records) {
          planned.set(id(replayKey(record)), record);
          entry.records.push(record);
        }
        entry.changed.add(plan.changed);
        entry.members.push({ index, result: (serial) => plan.result(serial) });
        settled[index] = { ok: true, value: undefined };
      } catch (error) {
        settled[index] = { ok: false, error };
      }
    });
    const completed: Array<{ apex: string; entry: GroupZone; writes: ZoneWrites; serial: number }> =
      [];
    for (const [apex, entry] of zones) {
      if (entry.overlay.writes.size === 0) {
        completed.push({
          apex,
          entry,
          writes: entry.overlay.writes,
          serial: zoneSerial(entry.overlay),
        });
        continue;
      }
      try {
        const plan = planSerial(reader(apex, entry.zone), entry.overlay.writes, entry.sign());
        completed.push({ apex, entry, ...plan });
        // The apex changed with its SOA.
        entry.changed.add([apex]);
      } catch (error) {
        for (const write of group) write.reject(error);
        return;
      }
    }
    for (const { apex, entry, writes, serial } of completed) {
      if (writes.size > 0 || entry.records.length > 0) {
        this.#commitWrite(apex, entry.zone, writes, entry.records, entry.changed.names);
      }
      for (const member of entry.members) {
        settled[member.index] = { ok: true, value: member.result(serial) };
      }
    }
    group.forEach((write, i) => {
      const result = settled[i];
      if (result?.ok === true) write.resolve(result.value);
      else write.reject(result?.error);
    });
  }

  /**
   * Commits one write of zone `apex` in one synchronous step: its nodes, its journal entry
   * (derived from the nodes as they were and as they become, before they are replaced) and the
   * anti-replay records of an operation; then logs `changed` and tells a replica's `onCommit`.
   * Every write of a zone's records comes through here.
   */
  #commitWrite(
    apex: string,
    zone: MemoryZone,
    writes: ZoneWrites,
    records: readonly ReplayRecord[],
    changed: ChangedNames | undefined,
  ): JournalEntry | undefined {
    const undo = this.#undo(apex, zone, writes, records);
    const entry = writes.size === 0 ? undefined : journalEntry(reader(apex, zone), writes);
    trackSignatures(apex, zone, writes);
    commit(apex, zone, writes);
    if (entry !== undefined) zone.journal.append(entry, this.#journalLimits);
    for (const record of records) this.#replay.set(id(replayKey(record)), record);
    if (changed !== undefined) this.#changed(changed);
    this.#emitWrite(apex, undo, writes, records, changed, entry);
    return entry;
  }

  async applyOperation(origin: string, operation: StoreOperation): Promise<OperationOutcome> {
    this.#open();
    const { apex } = this.#zone(origin);
    const prepared = prepareOperation(apex, operation);
    return (await this.#grouped(apex, operationPlan(prepared))) as OperationOutcome;
  }

  replayRecords(limit = Infinity): ReplayRecord[] {
    this.#open();
    return [...this.#replay.keys()]
      .sort()
      .slice(0, limit)
      .map((key) => this.#replay.get(key) as ReplayRecord);
  }

  async resign(before?: number): Promise<number> {
    this.#open();
    const now = this.#now();
    // Expired anti-replay records go in the same pass (one scan: the store is ephemeral).
    for (const [key, record] of this.#replay) if (!isActive(record, now)) this.#replay.delete(key);
    const limit = before ?? now + this.#policy.refreshBeforeSeconds;
    let count = 0;
    for (const [apex, zone] of this.#zones) {
      // A zone without a key to sign with (missing from the key directory) waits for it.
      if (zone.keySet.signers.length === 0) continue;
      this.#dropExpiredMappings(apex, zone, now);
      // Candidates in canonical order, then the chain: what planResign finds due among them.
      const candidates: string[] = [];
      for (const [, { name, node }] of zone.ordered.entries()) {
        if (mayBeDue(node, limit, zone.current)) candidates.push(name);
      }
      for (const [label, node] of zone.chain.entries()) {
        if (mayBeDue(node, limit, zone.current)) candidates.push(chainOwner(apex, label));
      }
      // Each write renews at most RESIGN_MAX_RRSETS_PER_WRITE RRsets; every candidate has at
      // least one RRset, so a window of that many names is enough for one write.
      for (let at = 0; at < candidates.length;) {
        const plan = planResign(
          reader(apex, zone),
          candidates.slice(at, at + RESIGN_MAX_RRSETS_PER_WRITE),
          limit,
          signerOf(apex, zone, now, this.#policy),
        );
        at += Math.max(1, plan.done);
        if (plan.count === 0) continue;
        this.#commitWrite(apex, zone, plan.writes, [], 'all');
        count += plan.count;
      }
      // A pass has seen every RRSIG: the counts are taken exactly again.
      countSignatures(zone);
    }
    return count;
  }

  /** Deletes the expired mappings of a zone (R9), in writes of RESIGN_MAX_RRSETS_PER_WRITE RRsets. */
  #dropExpiredMappings(apex: string, zone: MemoryZone, now: number): void {
    const names: string[] = [];
    for (const [name, node] of zone.nodes) if (mayHoldExpiredMappings(node, now)) names.push(name);
    for (let at = 0; at < names.length; at += RESIGN_MAX_RRSETS_PER_WRITE) {
      const read = reader(apex, zone);
      const changes = names
        .slice(at, at + RESIGN_MAX_RRSETS_PER_WRITE)
        .flatMap((name) => expiredMappingsChange(read, name, now) ?? []);
      if (changes.length === 0) continue;
      const { writes } = planApply(read, changes, signerOf(apex, zone, now, this.#policy));
      this.#commitWrite(apex, zone, writes, [], changedNames(changes, writes.keys()));
    }
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
    apex: string,
    zone: MemoryZone,
    writes: ZoneWrites,
    records: readonly ReplayRecord[],
  ): { nodes: ZoneWrites; replay: (ReplayRecord | undefined)[] } | undefined {
    if (this.#onCommit === undefined) return undefined;
    const read = reader(apex, zone);
    const nodes: ZoneWrites = new Map();
    for (const name of writes.keys()) nodes.set(name, read.node(name));
    return { nodes, replay: records.map((r) => this.#replay.get(id(replayKey(r)))) };
  }

  #emitWrite(
    origin: string,
    undo: { nodes: ZoneWrites; replay: (ReplayRecord | undefined)[] } | undefined,
    writes: ZoneWrites,
    records: readonly ReplayRecord[],
    changed: ChangedNames | undefined,
    journal: JournalEntry | undefined,
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
      journal,
    });
  }

  /** {@link MemoryReplica.loadNodes}. */
  loadNodes(origin: string, nodes: ZoneWrites, changed?: ChangedNames): void {
    this.#open();
    const zone = this.#zones.get(origin);
    if (zone === undefined) throw noZoneError(origin);
    trackSignatures(origin, zone, nodes);
    commit(origin, zone, nodes);
    this.#changed(changed ?? [...nodes.keys()]);
  }

  /** {@link MemoryReplica.loadZone}. */
  loadZone(origin: string, keySet: ZoneKeySet, nodes: ZoneWrites): void {
    this.#open();
    const apex = nodes.get(origin);
    if (apex === undefined) throw noZoneError(origin);
    const zone = newZone(origin, keySet, apex);
    commit(origin, zone, nodes);
    countSignatures(zone);
    this.#zones.set(origin, zone);
    this.#changed('all');
  }

  /** {@link MemoryReplica.keySetOf}. */
  keySetOf(origin: string): ZoneKeySet | undefined {
    this.#open();
    return this.#zones.get(origin)?.keySet;
  }

  /** {@link MemoryReplica.setKeySet}. */
  setKeySet(origin: string, keySet: ZoneKeySet): void {
    this.#open();
    const zone = this.#zones.get(origin);
    if (zone === undefined) throw noZoneError(origin);
    zone.keySet = keySet;
    zone.current = currentSigner(keySet);
    countSignatures(zone);
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
    const apex = zone.nodes.get(origin);
    const soa = apex?.get('SOA')?.records[0];
    const signer = zone.keySet.signers[0];
    const dnskey = signer?.dnskey ?? zone.keySet.dnskeys[0];
    return {
      origin,
      serial: soa?.type === 'SOA' ? soa.data.serial : 0,
      keyTag: signer?.keyTag ?? (dnskey === undefined ? 0 : computeKeyTag(dnskey)),
      publicKey: dnskey?.publicKey ?? new Uint8Array(32),
      nsec3: apex?.has('NSEC3PARAM') === true,
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
  | { kind: 'zone-added'; origin: string; writes: ZoneWrites }
  | { kind: 'zone-removed'; origin: string }
  | {
      kind: 'write';
      origin: string;
      before: ZoneWrites;
      writes: ZoneWrites;
      replay: readonly ReplayRecord[];
      replayBefore: readonly (ReplayRecord | undefined)[];
      changed: ChangedNames | undefined;
      /** The write's journal entry (what IXFR sends), undefined when the serial did not move. */
      journal: JournalEntry | undefined;
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
  /** Creates (or replaces) a zone with the key set it is signed with and its nodes, as they are. */
  loadZone(origin: string, keySet: ZoneKeySet, nodes: ZoneWrites): void;
  /** Changes the key set a zone is signed with (another front end refreshed its keys). */
  setKeySet(origin: string, keySet: ZoneKeySet): void;
  /** The key set a zone is signed with, undefined for no such zone. */
  keySetOf(origin: string): ZoneKeySet | undefined;
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
    node: (name) => {
      const label = chainLabel(origin, name);
      return label === undefined ? zone.nodes.get(name) : zone.chain.get(label);
    },
    namesBelow: function* (name) {
      const { start, end } = belowKeys(sortKey(name));
      for (const [, entry] of zone.ordered.entries(start, end)) yield entry.name;
    },
    nsec3: zone.chain,
  };
}

/**
 * Applies computed writes in one synchronous step: data nodes in both orders with the
 * descendant counts kept, the NSEC3 chain's nodes in the chain's map.
 */
function commit(origin: string, zone: MemoryZone, writes: ZoneWrites): void {
  for (const [name, node] of writes) {
    const label = chainLabel(origin, name);
    if (label !== undefined) {
      if (node === undefined) zone.chain.delete(label);
      else zone.chain.set(label, node);
      continue;
    }
    const existed = zone.nodes.has(name);
    if (node === undefined) {
      zone.nodes.delete(name);
      zone.ordered.delete(sortKey(name));
    } else {
      zone.nodes.set(name, node);
      zone.ordered.set(sortKey(name), { name, node });
    }
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

/**
 * The nodes of a zone in canonical order (RFC 4034 §6.1): its data nodes merged with its chain's,
 * each chain entry where its owner `<label>.<origin>` sorts.
 */
function* nodesInOrder(
  origin: string,
  ordered: SortedMap<OrderedNode>,
  chain: SortedMap<StoredNode>,
): Generator<StoredNode> {
  const entries = chain.entries();
  const step = (): { key: string; node: StoredNode } | undefined => {
    const next = entries.next();
    return next.done === true
      ? undefined
      : { key: sortKey(chainOwner(origin, next.value[0])), node: next.value[1] };
  };
  let pending = step();
  for (const [key, { node }] of ordered.entries()) {
    while (pending !== undefined && pending.key < key) {
      yield pending.node;
      pending = step();
    }
    yield node;
  }
  for (; pending !== undefined; pending = step()) yield pending.node;
}

/**
 * Whether a node has an RRset that is unsigned, whose RRSIG expires before `limit`, or whose
 * RRSIGs are not by the current keys (`planResign` tells which are really due).
 */
function mayBeDue(node: StoredNode, limit: number, current: ZoneSigner): boolean {
  for (const [type, rrset] of node) {
    if (isDue(rrset, type, limit, current, () => true)) return true;
  }
  return false;
}

/**
 * Keeps a zone's signature counts as writes replace nodes: the stale RRsets of the nodes going
 * away are taken off, those of the new nodes added, and new expirations lower the earliest.
 */
function trackSignatures(origin: string, zone: MemoryZone, writes: ZoneWrites): void {
  const read = reader(origin, zone);
  for (const [name, node] of writes) {
    zone.pending += staleRRsets(node, zone.current) - staleRRsets(read.node(name), zone.current);
    for (const rrset of node?.values() ?? []) {
      const e = earliestExpiration(rrset.signatures);
      if (e !== undefined && (zone.earliest === undefined || e < zone.earliest)) zone.earliest = e;
    }
  }
}

/**
 * The signer of a zone's writes: refused (`ERR_STORE_KEY_MISSING`) when its key set has no
 * signer, as a replica's zone whose keys are not in the key directory has, so that nothing is
 * ever written unsigned.
 */
function signerOf(
  origin: string,
  zone: MemoryZone,
  now: number,
  policy: SignatureValidityPolicy,
): ZoneSigner {
  if (zone.keySet.signers.length === 0) {
    throw new StoreError(
      'ERR_STORE_KEY_MISSING',
      `zone ${origin} has no key to sign with in the key directory`,
    );
  }
  return zoneSigner(zone.keySet, now, policy);
}

function tagsOf(keys: readonly ZoneKey[]): string {
  return keys.map((k) => k.keyTag).join(',');
}

function checkedSeed(seed: unknown): Uint8Array {
  if (!(seed instanceof Uint8Array && seed.length === 32)) {
    throw new StoreError('ERR_STORE_PROVER_KEY', 'proverSeed must be 32 octets (an Ed25519 seed)');
  }
  return seed;
}

/** A table key as a map key; latin1 keeps the octets' order. */
function id(key: Buffer): string {
  return key.toString('latin1');
}

/**
 * The key that orders names canonically (RFC 4034 §6.1), with every descendant of a name right
 * after it: the LMDB key of the name (`node-codec.ts`) with an empty origin, as latin1.
 */
function sortKey(name: string): string {
  return nodeKey('.', name).toString('latin1');
}

/** The key range `[start, end)` of the names strictly below the name of `key` (`belowRange`). */
function belowKeys(key: string): { start: string; end: string } {
  return { start: `${key}\u0001`, end: `${key.slice(0, -1)}\u0001` };
}

/**
 * A zone's journal in memory: its entries encoded (what they cost is what the limits count),
 * oldest first, each leading from the serial the one before led to.
 */
class MemoryJournal {
  /** Entries, oldest first from `#head` on (the ones before it were dropped). */
  #entries: Array<{ from: number; to: number; bytes: Uint8Array }> = [];
  #head = 0;
  #octets = 0;

  /** Adds the entry of the latest write, then drops the oldest entries past `limits`. */
  append(entry: JournalEntry, limits: JournalLimits): void {
    if (limits.maxEntries === 0) return;
    // An entry that does not follow the last one starts the journal afresh: the entries must
    // chain, or a transfer from an older serial would skip a change.
    if (this.#entries.at(-1)?.to !== entry.from) this.#clear();
    const bytes = encodeJournalEntry(entry);
    this.#entries.push({ from: entry.from, to: entry.to, bytes });
    this.#octets += bytes.length;
    while (
      this.#head < this.#entries.length &&
      (this.#entries.length - this.#head > limits.maxEntries || this.#octets > limits.maxOctets)
    ) {
      this.#octets -= (this.#entries[this.#head] as { bytes: Uint8Array }).bytes.length;
      this.#head += 1;
    }
    // Dropped entries are cut away once they are half the list: amortized O(1) per write.
    if (this.#head > 0 && this.#head * 2 >= this.#entries.length) {
      this.#entries = this.#entries.slice(this.#head);
      this.#head = 0;
    }
  }

  /** The entries from serial `from` to `current`; [] when `from` is current. */
  since(from: number, current: number): JournalEntry[] | undefined {
    if (from === current) return [];
    const last = this.#entries.at(-1);
    if (this.#head >= this.#entries.length || last?.to !== current) return undefined;
    for (let i = this.#head; i < this.#entries.length; i++) {
      if (this.#entries[i]?.from !== from) continue;
      return this.#entries.slice(i).map((entry) => decodeJournalEntry(entry.bytes));
    }
    return undefined;
  }

  #clear(): void {
    this.#entries = [];
    this.#head = 0;
    this.#octets = 0;
  }
}
