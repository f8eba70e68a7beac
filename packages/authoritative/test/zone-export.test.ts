import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  formatRecord,
  formatTime,
  formatZone,
  parseZoneFile,
  record,
  verifyZonemd,
  type RecordOf,
  type ResourceRecord,
} from '@mimi-discovery/common';
import { afterAll, describe, expect, it } from 'vitest';
import {
  EXPORT_CHUNK_CHARS,
  STREAM_BATCH_RECORDS,
  createMemoryStore,
  delegate,
  exportForm,
  exportZone,
  exportZoneText,
  keepZoneDigest,
  openLmdbStore,
  type DiscoveryStore,
  type ExportZoneOptions,
  type RRsetChange,
} from '../src/index.js';
import {
  CHILD,
  NUMBER,
  ORIGIN,
  PROVER_SEED,
  T0,
  delegation,
  expectStoreError,
  putMap,
  zoneInit,
} from './store-battery.js';
import { putMappings, specHex, verifyIn, type MappingSpec } from './expiring-mappings.js';

/**
 * A zone exported for stock secondaries must load in them and validate: ldns-verify-zone
 * (Debian ldnsutils) and named-checkzone (bind9-utils) read the file as NSD, Knot and BIND would.
 */

function onPath(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
}

function run(tool: string, args: string[]): { status: number | null; output: string } {
  const result = spawnSync(tool, args, { encoding: 'utf8' });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

const LDNS = onPath('ldns-verify-zone');
const CHECKZONE = onPath('named-checkzone');
if (!LDNS) {
  console.warn(
    'ldns-verify-zone not installed (Debian package ldnsutils): skipping export validation',
  );
}
if (!CHECKZONE) {
  console.warn(
    'named-checkzone not installed (Debian package bind9-utils): skipping the BIND load check',
  );
}

const dir = mkdtempSync(join(tmpdir(), 'mimi-export-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let counter = 0;

const address = (name: string, ip: string): RRsetChange => ({
  op: 'put',
  name,
  type: 'A',
  records: [record(name, 'A', ip, 3600)],
});

/** A range zone with a MAP, a MAPREF, a signed delegation and an unsigned one. */
async function populate(store: DiscoveryStore): Promise<void> {
  await store.addZone(zoneInit());
  const unsignedCut = `3.${ORIGIN}`;
  await store.apply(ORIGIN, [
    address(`ns1.${ORIGIN}`, '192.0.2.53'),
    address(`ns2.${ORIGIN}`, '192.0.2.54'),
    putMap(NUMBER, 1),
    {
      op: 'put',
      name: `9.9.9.9.6.4.9.7.0.2.${ORIGIN}`,
      type: 'MAPREF',
      records: [record(`9.9.9.9.6.4.9.7.0.2.${ORIGIN}`, 'MAPREF', 'dp.msp.example', 300)],
    },
    ...delegation(CHILD),
    {
      op: 'put',
      name: unsignedCut,
      type: 'NS',
      records: [record(unsignedCut, 'NS', `ns1.${unsignedCut}`, 3600)],
    },
    address(`ns1.${unsignedCut}`, '192.0.2.3'),
  ]);
  // A MAP that came and went leaves nothing behind.
  await store.apply(ORIGIN, [putMap(`5.5.${ORIGIN}`)]);
  await store.apply(ORIGIN, [{ op: 'delete', name: `5.5.${ORIGIN}`, type: 'MAP' }]);
}

const stores: Array<[string, () => Promise<DiscoveryStore>]> = [
  ['memory store', async () => createMemoryStore({ now: () => T0, proverSeed: PROVER_SEED })],
  [
    'LMDB store',
    async () =>
      openLmdbStore({
        dataDir: join(dir, `store-${++counter}`),
        now: () => T0,
        proverSeed: PROVER_SEED,
      }),
  ],
];

describe.each(stores)('exporting a zone of the %s', (_name, openStore) => {
  it('signs the export with a standard NSEC3 chain that ldns-verify-zone and named-checkzone accept', async () => {
    const store = await openStore();
    await populate(store);
    const text = exportZone(store, ORIGIN, { nsec3: true, now: T0 });
    const file = join(dir, `nsec3-${++counter}.zone`);
    writeFileSync(file, text);
    expect(text.split('\n')[0]).toMatch(
      new RegExp(`^${ORIGIN.replace(/\./g, '\\.')}\\. 3600 IN SOA .* 4 3600 600 1209600 300$`),
    );
    expect(text).toMatch(/ IN NSEC3PARAM 1 0 0 -\n/);
    // The apex, its two nameservers, both cuts, and the MAP and MAPREF owners with the 12 empty
    // non-terminals above them; not the glue below the cuts.
    expect(text.match(/ IN NSEC3 /g)?.length).toBe(19);
    expect(text).not.toContain('5.5.4.4');

    if (LDNS) {
      const { status, output } = run('ldns-verify-zone', ['-t', formatTime(T0), '-V', '3', file]);
      expect(output, output).toContain('Zone is verified and complete');
      expect(status).toBe(0);
    }
    if (CHECKZONE) {
      const { status, output } = run('named-checkzone', ['-i', 'full', '-k', 'fail', ORIGIN, file]);
      expect(output, output).toMatch(/loaded serial 4 \(DNSSEC signed\)\nOK/);
      expect(status).toBe(0);
    }
    await store.close();
  });

  it.skipIf(!LDNS)(
    'makes an export that ldns-verify-zone rejects once a record is changed',
    async () => {
      const store = await openStore();
      await populate(store);
      const text = exportZone(store, ORIGIN, { nsec3: true, now: T0 }).replace(
        '192.0.2.53',
        '192.0.2.99',
      );
      const file = join(dir, `tampered-${++counter}.zone`);
      writeFileSync(file, text);
      const { status, output } = run('ldns-verify-zone', ['-t', formatTime(T0), file]);
      expect(output).not.toContain('Zone is verified and complete');
      expect(status).not.toBe(0);
      await store.close();
    },
  );

  it.skipIf(!LDNS && !CHECKZONE)(
    'keeps a zone in the middle of a key switch verifiable: two DNSKEYs, CDS and CDNSKEY, RRSIGs by both keys',
    async () => {
      const store = await openStore();
      await populate(store);
      // Both keys active for the moment of a switch, CDS for both (double DS, RFC 7344).
      const [first] = store.keys.zoneKeys(ORIGIN);
      if (first === undefined) throw new Error('no key');
      await store.keys.addZoneKey(ORIGIN, {
        created: T0,
        publish: T0,
        active: T0,
        syncPublish: T0,
      });
      await store.keys.setTiming(ORIGIN, first.keyTag, { syncPublish: T0 });
      await store.refreshKeys(ORIGIN, T0);
      await store.setNsec3(ORIGIN, true);
      await store.resign();
      expect(store.signatureStatus(ORIGIN)?.pendingResign).toBe(0);
      const text = exportZone(store, ORIGIN, { nsec3: true, now: T0 });
      expect(text.match(/ IN DNSKEY 257 3 15 /g)).toHaveLength(2);
      expect(text.match(/ IN CDS /g)).toHaveLength(2);
      expect(text.match(/ IN CDNSKEY /g)).toHaveLength(2);
      expect(text.match(/ IN RRSIG SOA /g)).toHaveLength(2);
      const file = join(dir, `rolling-${++counter}.zone`);
      writeFileSync(file, text);
      if (LDNS) {
        const { status, output } = run('ldns-verify-zone', ['-t', formatTime(T0), '-V', '3', file]);
        expect(output, output).toContain('Zone is verified and complete');
        expect(status).toBe(0);
      }
      if (CHECKZONE) {
        const { status, output } = run('named-checkzone', [
          '-i',
          'full',
          '-k',
          'fail',
          ORIGIN,
          file,
        ]);
        expect(output, output).toMatch(/\(DNSSEC signed\)\nOK/);
        expect(status).toBe(0);
      }
      await store.close();
    },
  );

  it('exports the zone as served, RRSIGs included, without NSEC3', async () => {
    const store = await openStore();
    await populate(store);
    const text = exportZone(store, ORIGIN, { nsec3: false });
    expect(text).toBe(formatZone(ORIGIN, store.readZone(ORIGIN)));
    expect(text).not.toContain('NSEC3');
    expect(text).toContain(' IN RRSIG TYPE65400 15 ');
    await store.close();
  });

  describe('with mappings that expire', () => {
    /** Expires at T0 + 100. */
    const soon: MappingSpec = { key: 31, exp: T0 + 100 };
    /** Expires at T0 + 1000. */
    const later: MappingSpec = { key: 32, exp: T0 + 1000 };
    /** The only mapping at its name, expiring at T0 + 100 by its attestation. */
    const alone: MappingSpec = {
      key: 33,
      csi: 'tel:+442079460019',
      exp: T0 + 5000,
      attExp: T0 + 100,
    };
    const ALONE = `9.1.0.0.6.4.9.7.0.2.${ORIGIN}`;

    const populateExpiring = async (store: DiscoveryStore): Promise<void> => {
      await populate(store);
      await store.apply(ORIGIN, [putMappings([soon, later]), putMappings([alone], ALONE)]);
    };

    it('leaves an expired mapping out of the NSEC3 export, which still validates', async () => {
      const store = await openStore();
      await populateExpiring(store);
      const hex = (specs: MappingSpec[]): string[] => specHex(specs).map((h) => h.toUpperCase());
      const check = (at: number, present: MappingSpec[], absent: MappingSpec[]): void => {
        const text = exportZone(store, ORIGIN, { nsec3: true, now: at });
        const file = join(dir, `expiring-${++counter}.zone`);
        writeFileSync(file, text);
        const flat = text.replace(/ /g, '').toUpperCase();
        for (const h of hex(present)) expect(flat).toContain(h);
        for (const h of hex(absent)) expect(flat).not.toContain(h);
        if (LDNS) {
          const { status, output } = run('ldns-verify-zone', ['-t', formatTime(at), file]);
          expect(output, output).toContain('Zone is verified and complete');
          expect(status).toBe(0);
        }
        if (CHECKZONE) {
          const { status, output } = run('named-checkzone', [
            '-i',
            'full',
            '-k',
            'fail',
            ORIGIN,
            file,
          ]);
          expect(output, output).toMatch(/\(DNSSEC signed\)\nOK/);
          expect(status).toBe(0);
        }
      };
      check(T0 + 99, [soon, later, alone], []);
      const before = exportZone(store, ORIGIN, { nsec3: true, now: T0 + 99 });
      expect(before).toContain('9.1.0.0.6.4.9.7.0.2.4.4');
      check(T0 + 100, [later], [soon, alone]);
      // The name that held only expired mappings is gone, with its NSEC3 and the empty
      // non-terminals above it that nothing else needs.
      const after = exportZone(store, ORIGIN, { nsec3: true, now: T0 + 100 });
      expect(after).not.toContain('9.1.0.0.6.4.9.7.0.2.4.4');
      expect(after.match(/ IN NSEC3 /g)?.length).toBe(before.match(/ IN NSEC3 /g)!.length - 1);
      check(T0 + 1000, [], [soon, later, alone]);
      await store.close();
    });

    it('re-signs a MAP RRset that lost mappings in the export without NSEC3', async () => {
      const store = await openStore();
      await populateExpiring(store);
      expect(exportZone(store, ORIGIN, { nsec3: false, now: T0 + 99 })).toBe(
        formatZone(ORIGIN, store.readZone(ORIGIN)),
      );
      const at = T0 + 100;
      const exported = parseZoneFile(exportZone(store, ORIGIN, { nsec3: false, now: at }));
      const stored = store.readZone(ORIGIN);
      const atName = (records: typeof stored, name: string): typeof stored =>
        records.filter((rr) => rr.name === name || rr.name === `${name}.`);
      // What did not change is exported as stored, RRSIGs included.
      const rest = (records: typeof stored): string =>
        formatZone(
          ORIGIN,
          records.filter(
            (rr) => !rr.name.startsWith('8.1.0.0.6') && !rr.name.startsWith('9.1.0.0.6'),
          ),
        );
      expect(rest(exported)).toBe(rest(stored));
      expect(atName(exported, ALONE)).toEqual([]);
      const maps = atName(exported, NUMBER);
      expect(specHex([later])).toEqual(
        maps.flatMap((rr) => (rr.type === 'MAP' ? [Buffer.from(rr.data).toString('hex')] : [])),
      );
      expect(verifyIn(store, maps, 'MAP', at)).toEqual({ kind: 'verified' });
      const rrsig = maps.find((rr): rr is RecordOf<'RRSIG'> => rr.type === 'RRSIG');
      expect(rrsig?.data.expiration).toBe(at + 14 * 86_400);
      await store.close();
    });
  });

  it('refuses a zone the store does not hold', async () => {
    const store = await openStore();
    await expectStoreError(() => exportZone(store, ORIGIN, { nsec3: true }), 'ERR_STORE_NO_ZONE');
    await expectStoreError(() => text(store, { nsec3: false }), 'ERR_STORE_NO_ZONE');
    await store.close();
  });

  describe('as a stream', () => {
    it('writes what exportZone writes, in either form, expired mappings left out alike', async () => {
      const store = await openStore();
      await populate(store);
      await store.apply(ORIGIN, [
        putMappings([
          { key: 41, exp: T0 + 100 },
          { key: 42, exp: T0 + 1000 },
        ]),
      ]);
      expect(exportForm(store, ORIGIN, true)).toBe('signed-in-memory');
      expect(exportForm(store, ORIGIN, false)).toBe('as-served');
      for (const at of [T0, T0 + 100, T0 + 1000]) {
        for (const nsec3 of [true, false]) {
          const options = { nsec3, now: at };
          expect(await text(store, options), `nsec3 ${nsec3} at ${at}`).toBe(
            exportZone(store, ORIGIN, options),
          );
        }
      }
      await store.close();
    });

    it('writes a large zone in pieces of whole lines, each about EXPORT_CHUNK_CHARS', async () => {
      const store = await openStore();
      await populate(store);
      await putNotes(store, 0, 3 * STREAM_BATCH_RECORDS);
      const pieces: string[] = [];
      for await (const piece of exportZoneText(store, ORIGIN, { nsec3: false, now: T0 })) {
        pieces.push(piece);
      }
      expect(pieces.length).toBeGreaterThan(2);
      for (const piece of pieces) {
        expect(piece.length).toBeLessThanOrEqual(EXPORT_CHUNK_CHARS + 1000);
        expect(piece.endsWith('\n')).toBe(true);
      }
      expect(pieces.join('')).toBe(exportZone(store, ORIGIN, { nsec3: false, now: T0 }));
      await store.close();
    });

    it('reads one snapshot: a write made while the export runs is not in it', async () => {
      const store = await openStore();
      await populate(store);
      await putNotes(store, 0, 3 * STREAM_BATCH_RECORDS);
      const before = exportZone(store, ORIGIN, { nsec3: false, now: T0 });
      const pieces = exportZoneText(store, ORIGIN, { nsec3: false, now: T0 });
      const first = await pieces.next();
      expect(first.done).toBe(false);
      // Delete the last note (not written yet) and add one.
      await store.apply(ORIGIN, [
        { op: 'delete', name: note(3 * STREAM_BATCH_RECORDS - 1), type: 'TXT' },
      ]);
      await putNotes(store, 3 * STREAM_BATCH_RECORDS, 1);
      let all = first.value as string;
      for await (const piece of pieces) all += piece;
      expect(all).toBe(before);
      expect(exportZone(store, ORIGIN, { nsec3: false, now: T0 })).not.toBe(before);
      await store.close();
    });
  });

  describe('of a zone that keeps its NSEC3 chain and ZONEMD', () => {
    const ROOT = 'mimi.arpa';
    const rootZone = async (): Promise<DiscoveryStore> => {
      const store = await openStore();
      await store.addZone(zoneInit(ROOT));
      await keepZoneDigest(store, ROOT);
      await delegate(store, ROOT, {
        zone: ORIGIN,
        nameservers: [{ name: `ns1.${ORIGIN}`, addresses: ['192.0.2.1'] }],
        ds: [
          {
            keyTag: 1,
            algorithm: 15,
            digestType: 2,
            digest: new Uint8Array(32).fill(7),
          },
        ],
      });
      return store;
    };

    it('streams the zone as stored with --nsec3: chain, RRSIGs and ZONEMD as they are', async () => {
      const store = await rootZone();
      expect(store.zoneInfo(ROOT)?.nsec3).toBe(true);
      expect(exportForm(store, ROOT, true)).toBe('stored-chain');
      const streamed = await text(store, { nsec3: true, now: T0 + 5000 }, ROOT);
      expect(streamed).toBe(formatZone(ROOT, store.readZone(ROOT)));
      expect(streamed).toBe(exportZone(store, ROOT, { nsec3: true, now: T0 + 5000 }));
      expect(verifyZonemd(ROOT, parseZoneFile(streamed)).kind).toBe('verified');
      if (LDNS) {
        const file = join(dir, `chain-${++counter}.zone`);
        writeFileSync(file, streamed);
        const { status, output } = run('ldns-verify-zone', ['-t', formatTime(T0), file]);
        expect(output, output).toContain('Zone is verified and complete');
        expect(status).toBe(0);
      }
      await store.close();
    });

    it('leaves the chain out as served, and writes a ZONEMD computed afresh last', async () => {
      const store = await rootZone();
      const streamed = await text(store, { nsec3: false, now: T0 }, ROOT);
      const records = parseZoneFile(streamed);
      expect(records.some((rr) => rr.type === 'NSEC3' || rr.type === 'NSEC3PARAM')).toBe(false);
      expect(records.slice(-2).map((rr) => rr.type)).toEqual(['ZONEMD', 'RRSIG']);
      expect(verifyZonemd(ROOT, records).kind).toBe('verified');
      // The stored ZONEMD covered the chain; the written one covers what was written.
      const stored = store.readZone(ROOT).find((rr) => rr.type === 'ZONEMD');
      expect(stored && formatRecord(stored)).not.toBe(
        formatRecord(records.at(-2) as ResourceRecord),
      );
      // The same records as the string export, which keeps canonical order throughout.
      expect(formatZone(ROOT, records)).toBe(exportZone(store, ROOT, { nsec3: false, now: T0 }));
      await store.close();
    });
  });
});

/** What exportZoneText writes, as one string. */
async function text(
  store: DiscoveryStore,
  options: ExportZoneOptions,
  origin = ORIGIN,
): Promise<string> {
  let out = '';
  for await (const piece of exportZoneText(store, origin, options)) out += piece;
  return out;
}

const note = (i: number): string => `${i}.note.${ORIGIN}`;

/** Puts `count` TXT RRsets of about 100 characters from `note(from)` on, 1,000 per apply. */
async function putNotes(store: DiscoveryStore, from: number, count: number): Promise<void> {
  for (let at = from; at < from + count; at += 1000) {
    const changes: RRsetChange[] = [];
    for (let i = at; i < Math.min(at + 1000, from + count); i++) {
      changes.push({
        op: 'put',
        name: note(i),
        type: 'TXT',
        records: [record(note(i), 'TXT', [Buffer.from(`note ${i} `.padEnd(100, 'x'))], 300)],
      });
    }
    await store.apply(ORIGIN, changes);
  }
}
