import { Buffer } from 'node:buffer';
import {
  buildNsec3Chain,
  canonicalName,
  compareNames,
  denialTtl,
  encodeRecord,
  signRRset,
  typeToCode,
  type Clock,
  type RecordOf,
  type ResourceRecord,
} from '@mimi-discovery/common';
import type { DiscoveryStore, JournalEntry } from '@mimi-discovery/authoritative';

/**
 * A test double of the store's journal and NSEC3 chain (issue 14 §1: `journalSince`,
 * `streamZone`, `setNsec3`), over any store, for the transfer tests: each write's journal entry
 * is the difference between the zone before and after it (`readZone`), and the chain is built
 * from the zone's data (`buildNsec3Chain`) and signed with the zone's key over one fixed validity,
 * so that an unchanged NSEC3 RRset keeps its RRSIG and a change touches only its own entries.
 * Small zones only: each write reads the zone twice. The store's own journal and chain are
 * tested by the store battery; this double lets the transfer code be tested on its own.
 */

/** A store with the double's journal and chain, and what the tests look at. */
export interface JournalingStore extends DiscoveryStore {
  /** The entries kept for `origin`, oldest first. */
  journal(origin: string): readonly JournalEntry[];
  /** How many times `readZone` was called (a transfer must stream, not read the whole zone). */
  readonly readZoneCalls: number;
}

/** Options of {@link journalingStore}. */
export interface JournalingOptions {
  /** Start of the chain's signatures' validity (a day before, a month after). */
  readonly now: Clock;
  /** Records per batch of `streamZone`; default 100. */
  readonly batch?: number;
  /** Entries kept per zone (the oldest go first); default all. */
  readonly maxEntries?: number;
}

/** Wraps `inner` (see the module comment). */
export function journalingStore(
  inner: DiscoveryStore,
  options: JournalingOptions,
): JournalingStore {
  const batch = options.batch ?? 100;
  const validity = { inception: options.now() - 86_400, expiration: options.now() + 30 * 86_400 };
  const journals = new Map<string, JournalEntry[]>();
  const chained = new Set<string>();
  let readZoneCalls = 0;
  let queue: Promise<unknown> = Promise.resolve();

  const zoneOf = (origin: string): ResourceRecord[] => {
    const apex = canonicalName(origin);
    const records = inner.readZone(apex);
    const key = inner.zoneKey(apex);
    if (!chained.has(apex) || key === undefined) return records;
    const soa = records.find((rr): rr is RecordOf<'SOA'> => rr.type === 'SOA');
    if (soa === undefined) return records;
    const chain = buildNsec3Chain(apex, records, denialTtl(soa));
    const signed: ResourceRecord[] = [];
    for (const rr of chain) signed.push(rr, signRRset([rr], key, validity));
    return canonicalOrder([...records, ...signed]);
  };

  /** Runs one write of `origins`, one write at a time, and journals what it changed in each. */
  const write = <T>(origins: readonly string[], run: () => Promise<T>): Promise<T> => {
    const next = queue.then(async () => {
      const apexes = origins.map((origin) => canonicalName(origin));
      const before = new Map(
        apexes.flatMap((apex) =>
          inner.zoneInfo(apex) === undefined ? [] : [[apex, zoneOf(apex)] as const],
        ),
      );
      const result = await run();
      for (const [apex, records] of before) {
        if (inner.zoneInfo(apex) === undefined) continue;
        const entry = difference(records, zoneOf(apex));
        if (entry === undefined) continue;
        const entries = journals.get(apex) ?? [];
        entries.push(entry);
        if (options.maxEntries !== undefined && entries.length > options.maxEntries) {
          entries.splice(0, entries.length - options.maxEntries);
        }
        journals.set(apex, entries);
      }
      return result;
    });
    queue = next.catch(() => undefined);
    return next;
  };

  const own: Partial<JournalingStore> = {
    readZone(origin) {
      readZoneCalls++;
      return zoneOf(origin);
    },
    async *streamZone(origin) {
      const records = zoneOf(origin);
      for (let i = 0; i < records.length; i += batch) yield records.slice(i, i + batch);
    },
    async journalSince(origin, from) {
      const apex = canonicalName(origin);
      const info = inner.zoneInfo(apex);
      if (info === undefined) throw new Error(`no zone ${apex}`);
      if (from === info.serial) return [];
      const entries = journals.get(apex) ?? [];
      const at = entries.findIndex((entry) => entry.from === from);
      return at < 0 ? undefined : entries.slice(at);
    },
    setNsec3(origin, enabled) {
      const apex = canonicalName(origin);
      if (chained.has(apex) === enabled) {
        return Promise.resolve({ serial: inner.zoneInfo(apex)?.serial ?? 0 });
      }
      return write([apex], async () => {
        if (enabled) chained.add(apex);
        else chained.delete(apex);
        // A write of its own, so the chain change has a serial (and a journal entry).
        return inner.apply(apex, []);
      });
    },
    apply: (origin, changes) => write([origin], () => inner.apply(origin, changes)),
    applyOperation: (origin, operation) =>
      write([origin], () => inner.applyOperation(origin, operation)),
    resign: (before) => write(inner.listZones(), () => inner.resign(before)),
    journal: (origin) => journals.get(canonicalName(origin)) ?? [],
  };
  return new Proxy(inner, {
    get(target, property, receiver) {
      if (property === 'readZoneCalls') return readZoneCalls;
      if (Object.hasOwn(own, property)) return own[property as keyof JournalingStore];
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function'
        ? (value as (...a: unknown[]) => unknown).bind(target)
        : value;
    },
  }) as JournalingStore;
}

/** The journal entry turning `before` into `after`, or undefined when the SOA did not change. */
function difference(
  before: readonly ResourceRecord[],
  after: readonly ResourceRecord[],
): JournalEntry | undefined {
  const oldSoa = before.find((rr): rr is RecordOf<'SOA'> => rr.type === 'SOA');
  const newSoa = after.find((rr): rr is RecordOf<'SOA'> => rr.type === 'SOA');
  if (oldSoa === undefined || newSoa === undefined) return undefined;
  if (oldSoa.data.serial === newSoa.data.serial) return undefined;
  const count = (records: readonly ResourceRecord[]): Map<string, ResourceRecord[]> => {
    const out = new Map<string, ResourceRecord[]>();
    for (const rr of records) {
      if (rr.type === 'SOA') continue;
      const id = Buffer.from(encodeRecord(rr, { canonical: true })).toString('hex');
      out.set(id, [...(out.get(id) ?? []), rr]);
    }
    return out;
  };
  const was = count(before);
  const is = count(after);
  const gone = (from: Map<string, ResourceRecord[]>, to: Map<string, ResourceRecord[]>) =>
    [...from].flatMap(([id, records]) => records.slice(to.get(id)?.length ?? 0));
  return {
    from: oldSoa.data.serial,
    to: newSoa.data.serial,
    deleted: [oldSoa, ...canonicalOrder(gone(was, is))],
    added: [newSoa, ...canonicalOrder(gone(is, was))],
  };
}

/** Records by owner (RFC 4034 §6.1), then type code, each RRSIG after the RRset it covers. */
function canonicalOrder(records: readonly ResourceRecord[]): ResourceRecord[] {
  const rank = (rr: ResourceRecord): number =>
    rr.type === 'RRSIG' ? typeToCode(rr.data.typeCovered) + 0.5 : typeToCode(rr.type);
  return [...records].sort((a, b) => compareNames(a.name, b.name) || rank(a) - rank(b));
}
