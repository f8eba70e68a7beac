import type { RecordOf, ResourceRecord, RRType } from '@mimi-discovery/common';
import type { ReplayRecord } from './mapping-ops.js';
import { connectPg, messageOf, migrateWith } from './pg-schema.js';
import { logChange, putNodes, putReplay } from './pg-statements.js';
import type { DiscoveryStore } from './store.js';
import { StoreError } from './store-error.js';
import type { StoredNode, ZoneWrites } from '../zone/zone-signer.js';

/**
 * Moving a DP from the embedded LMDB store to PostgreSQL (docs/operations.md, "Several front
 * ends over PostgreSQL"): every zone of a store — its records and signatures as they are, the
 * zone key's seed, the serial — with the prover key and the anti-replay records, copied into an
 * empty database in one transaction. Nothing is re-signed: the parent's DS keeps matching.
 */

/** What {@link copyStoreToPg} copied. */
export interface StoreCopyReport {
  readonly zones: number;
  readonly nodes: number;
  readonly replayRecords: number;
}

/**
 * Copies `source` (any store; stop the server that writes it first) into the database at `url`,
 * creating the schema when needed. Rejects with `StoreError`, changing nothing:
 * `ERR_STORE_ZONE_EXISTS` when the database already holds a zone, `ERR_STORE_PROVER_KEY` when it
 * holds another prover key, `ERR_STORE_IO` when it cannot be reached.
 */
export async function copyStoreToPg(source: DiscoveryStore, url: string): Promise<StoreCopyReport> {
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
    const prover = Buffer.from(source.proverKey().secretKey);
    await client.query(
      `INSERT INTO secrets (name, seed) VALUES ('prover', $1) ON CONFLICT (name) DO NOTHING`,
      [prover],
    );
    const stored = await client.query<{ seed: Buffer }>(
      `SELECT seed FROM secrets WHERE name = 'prover'`,
    );
    if (stored.rows[0]?.seed.equals(prover) !== true) {
      throw new StoreError(
        'ERR_STORE_PROVER_KEY',
        'the database holds a different prover key than the store being copied',
      );
    }
    let nodes = 0;
    const zones = source.listZones();
    for (const origin of zones) {
      const key = source.zoneKey(origin);
      if (key === undefined) continue;
      await client.query('INSERT INTO zones (origin, version) VALUES ($1, 1)', [origin]);
      await client.query('INSERT INTO secrets (name, seed) VALUES ($1, $2)', [
        `zone ${origin}`,
        Buffer.from(key.keyPair.secretKey),
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
