import {
  systemClock,
  type RecordOf,
  type ResourceRecord,
  type RRType,
} from '@mimi-discovery/common';
import type { ReplayRecord } from './mapping-ops.js';
import { connectPg, messageOf, migrateWith } from './pg-schema.js';
import { logChange, putNodes, putReplay } from './pg-statements.js';
import type { DiscoveryStore } from './store.js';
import { StoreError } from './store-error.js';
import { encodeSigningRecord, signingRecordOf, zoneKeySet } from './store-keys.js';
import type { StoredNode, ZoneWrites } from '../zone/zone-signer.js';

/**
 * Moving a DP from the embedded LMDB store to PostgreSQL (docs/operations.md, "Several front
 * ends over PostgreSQL"): every zone of a store — its records and signatures as they are, the
 * keys it is signed with (their tags: the keys stay in the key directory, which the PostgreSQL
 * front ends use too), the serial — with the anti-replay records, copied into an empty database
 * in one transaction. Nothing is re-signed: the parent's DS keeps matching.
 */

/** What {@link copyStoreToPg} copied. */
export interface StoreCopyReport {
  readonly zones: number;
  readonly nodes: number;
  readonly replayRecords: number;
}

/**
 * Copies `source` (any store; stop the server that writes it first) into the database at `url`,
 * creating the schema when needed; `now` (default the system clock) is when the zones' key sets
 * are taken from the key directory. Rejects with `StoreError`, changing nothing:
 * `ERR_STORE_ZONE_EXISTS` when the database already holds a zone, `ERR_STORE_IO` when it cannot
 * be reached.
 */
export async function copyStoreToPg(
  source: DiscoveryStore,
  url: string,
  now: number = systemClock(),
): Promise<StoreCopyReport> {
  const client = await connectPg(url);
  try {
    await migrateWith(client);
    await client.query('BEGIN ISOLATION LEVEL SERIALIZABLE; SET LOCAL synchronous_commit TO on');
    const present = await client.query<{ origin: string }>('SELECT origin FROM zones LIMIT 1');
    if (present.rows.length > 0) {
      throw new StoreError(
        'ERR_STORE_ZONE_EXISTS',
        `the database already holds zone ${present.rows[0]?.origin}: copy into an empty one`,
      );
    }
    let nodes = 0;
    const zones = source.listZones();
    for (const origin of zones) {
      if (source.zoneKey(origin) === undefined) continue;
      // The keys the zone is signed with now, as the source's key directory says.
      const set = zoneKeySet(source.keys, origin, now);
      const signing = encodeSigningRecord(
        signingRecordOf(set, { pending: 0, earliest: undefined }),
      ).toString('utf8');
      await client.query('INSERT INTO zones (origin, version, signing) VALUES ($1, 1, $2)', [
        origin,
        signing,
      ]);
      const writes = nodesOf(source, origin);
      nodes += writes.size;
      await putNodes(client, origin, writes);
      await logChange(client, origin, 1, {
        nodes: writes,
        replay: new Map(),
        names: new Set(writes.keys()),
        everything: true,
        journal: [],
      });
    }
    const records: ReplayRecord[] = source.replayRecords();
    await putReplay(client, records);
    await client.query('COMMIT');
    return { zones: zones.length, nodes, replayRecords: records.length };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    if (error instanceof StoreError) throw error;
    throw new StoreError('ERR_STORE_IO', `the copy into PostgreSQL failed: ${messageOf(error)}`, {
      cause: error,
    });
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** An RRset being gathered from records. */
interface MutableRRset {
  records: ResourceRecord[];
  signatures: RecordOf<'RRSIG'>[];
}

/**
 * The nodes of a zone from its records (`readZone`: canonical order, each RRset followed by its
 * RRSIG), as the stores keep them.
 */
function nodesOf(source: DiscoveryStore, origin: string): ZoneWrites {
  const rrsets = new Map<string, Map<RRType, MutableRRset>>();
  for (const rr of source.readZone(origin)) {
    let node = rrsets.get(rr.name);
    if (node === undefined) {
      node = new Map();
      rrsets.set(rr.name, node);
    }
    const type = rr.type === 'RRSIG' ? rr.data.typeCovered : rr.type;
    let rrset = node.get(type);
    if (rrset === undefined) {
      rrset = { records: [], signatures: [] };
      node.set(type, rrset);
    }
    if (rr.type === 'RRSIG') rrset.signatures.push(rr);
    else rrset.records.push(rr);
  }
  const out: ZoneWrites = new Map();
  for (const [name, node] of rrsets) out.set(name, node as StoredNode);
  return out;
}
