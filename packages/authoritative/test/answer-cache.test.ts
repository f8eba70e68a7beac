import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildQuery,
  createDohClient,
  createLocalCa,
  createTrustAnchor,
  formatBindTrustAnchors,
  issueServerCertificate,
  queryTcp,
  queryUdp,
  type DnskeyData,
  type Message,
} from '@mimi-discovery/common';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createMemoryStore,
  dpConfigSchema,
  openLmdbStore,
  startDp,
  type DiscoveryStore,
} from '../src/index.js';
import { mapHex, putMappings, specHex, verifyIn, type MappingSpec } from './expiring-mappings.js';
import {
  NUMBER,
  ORIGIN,
  PROVER_SEED,
  fakeClock,
  mapRecord,
  putMap,
  zoneInit,
} from './store-battery.js';

const root = mkdtempSync(join(tmpdir(), 'mimi-answer-cache-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const stores: [string, (dir: string) => Promise<DiscoveryStore>][] = [
  ['memory', async () => createMemoryStore({ proverSeed: PROVER_SEED, now: fakeClock().now })],
  ['LMDB', (dir) => openLmdbStore({ dataDir: dir, proverSeed: PROVER_SEED, now: fakeClock().now })],
];

describe.each(stores)('a DP with its answer cache, over the %s store', (kind, open) => {
  it('answers a write from the moment it is acknowledged, over UDP and TCP', async () => {
    const dir = join(root, kind);
    const store = await open(join(dir, 'store'));
    await store.addZone(zoneInit());
    const config = dpConfigSchema.parse({
      role: 'dp',
      dataDir: dir,
      listen: { udp: 0, tcp: 0, admin: 0 },
      log: { level: 'error' },
    });
    const provider = await startDp(config, { store, now: fakeClock().now });
    try {
      const at = { host: '127.0.0.1', port: provider.dns!.udp!.port };
      const ask = async (over: 'udp' | 'tcp') => {
        const query = buildQuery(NUMBER, 'MAP', { dnssecOk: true });
        return over === 'udp' ? queryUdp(at, query) : queryTcp(at, query);
      };
      // Asked twice before the write: the second answer comes from the cache.
      for (const over of ['udp', 'tcp'] as const) {
        for (let i = 0; i < 2; i++) {
          const before = await ask(over);
          expect(before.rcode).toBe('NOERROR');
          expect(before.answers).toEqual([]);
        }
      }
      await store.apply(ORIGIN, [putMap(NUMBER, 9)]);
      for (const over of ['udp', 'tcp'] as const) {
        const after = await ask(over);
        expect(after.answers.filter((rr) => rr.type === 'MAP')).toEqual([mapRecord(NUMBER, 9)]);
      }
      // A write elsewhere keeps this answer cached; one at an absent name below it shows,
      // because the cached denial of its ancestor is dropped.
      const other = `7.${NUMBER}`;
      const hits = async (): Promise<number> => {
        const text = await fetch(`http://127.0.0.1:${provider.admin!.port}/metrics`).then((r) =>
          r.text(),
        );
        return Number(/^authoritative_answer_cache_hits_total (\d+)/m.exec(text)?.[1]);
      };
      const ancestor = await queryUdp(at, buildQuery(`1.${ORIGIN}`, 'MAP', { dnssecOk: true }));
      expect(ancestor.rcode).toBe('NOERROR');
      expect(ancestor.answers).toEqual([]);
      await store.apply(ORIGIN, [putMap(`9.1.${ORIGIN}`, 3)]);
      const before = await hits();
      expect((await ask('udp')).answers.filter((rr) => rr.type === 'MAP')).toHaveLength(1);
      expect(await hits()).toBe(before + 1);
      const again = await queryUdp(at, buildQuery(`1.${ORIGIN}`, 'MAP', { dnssecOk: true }));
      // Now an empty non-terminal: NODATA whose NSEC lists no types but NSEC and RRSIG.
      expect(again.authorities.find((rr) => rr.type === 'NSEC')).not.toEqual(
        ancestor.authorities.find((rr) => rr.type === 'NSEC'),
      );
      await store.apply(ORIGIN, [putMap(other, 4)]);
      expect((await ask('udp')).answers.filter((rr) => rr.type === 'MAP')).toEqual([
        mapRecord(NUMBER, 9),
      ]);
      const metrics = await fetch(`http://127.0.0.1:${provider.admin!.port}/metrics`).then((r) =>
        r.text(),
      );
      expect(metrics).toMatch(/^authoritative_answer_cache_hits_total [1-9]/m);
      expect(metrics).toMatch(/^authoritative_answer_cache_bytes [1-9]/m);
    } finally {
      await provider.close();
      await store.close();
    }
  });
});

function onPath(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
}

const DIG = onPath('dig');
const DELV = onPath('delv');
if (!DIG || !DELV) {
  console.warn('dig or delv not installed (Debian package bind9-dnsutils): skipping their checks');
}

/** Runs a program without blocking the event loop (the server under test answers meanwhile). */
function run(tool: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(tool, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('error', reject);
    child.once('close', () => {
      clearTimeout(timer);
      resolve(output);
    });
  });
}

describe("the age bound of a DP's answer cache (answerCacheMaxAgeSeconds)", () => {
  it.each([
    [undefined, 3600],
    [600, 600],
  ])('keeps a denial for %s (→ %i s), then computes it again', async (setting, bound) => {
    const dir = join(root, `max-age-${bound}`);
    const clock = fakeClock();
    const store = await createMemoryStore({ proverSeed: PROVER_SEED, now: clock.now });
    await store.addZone(zoneInit());
    const config = dpConfigSchema.parse({
      role: 'dp',
      dataDir: dir,
      listen: { udp: 0, tcp: null, admin: 0 },
      log: { level: 'error' },
      ...(setting === undefined ? {} : { answerCacheMaxAgeSeconds: setting }),
    });
    expect(config.answerCacheMaxAgeSeconds).toBe(bound);
    const provider = await startDp(config, { store, now: clock.now });
    try {
      const at = { host: '127.0.0.1', port: provider.dns!.udp!.port };
      const hits = async (): Promise<number> => {
        const text = await fetch(`http://127.0.0.1:${provider.admin!.port}/metrics`).then((r) =>
          r.text(),
        );
        return Number(/^authoritative_answer_cache_hits_total (\d+)/m.exec(text)?.[1]);
      };
      // An absent name: a denial signed online, which no mapping expiry bounds.
      const ask = () => queryUdp(at, buildQuery(`5.5.${ORIGIN}`, 'MAP', { dnssecOk: true }));
      const first = await ask();
      // A compact denial (RFC 9824): NOERROR with no MAP, its NSEC signed online.
      expect(first.rcode).toBe('NOERROR');
      expect(first.answers.filter((rr) => rr.type === 'MAP')).toEqual([]);
      expect(first.authorities.some((rr) => rr.type === 'RRSIG')).toBe(true);
      const start = await hits();
      clock.advance(Math.max(301, bound - 1));
      expect({ ...(await ask()), id: first.id }).toEqual(first);
      expect(await hits()).toBe(start + 1);
      clock.advance(2);
      const renewed = await ask();
      expect(renewed.rcode).toBe('NOERROR');
      expect(renewed.answers.filter((rr) => rr.type === 'MAP')).toEqual([]);
      expect(await hits()).toBe(start + 1);
    } finally {
      await provider.close();
    }
  });

  it("refuses a bound past a quarter of an online signature's validity, or below 1 s", () => {
    for (const value of [0, 21601, 1.5])
      expect(() =>
        dpConfigSchema.parse({ role: 'dp', dataDir: '/tmp/x', answerCacheMaxAgeSeconds: value }),
      ).toThrow();
    expect(
      dpConfigSchema.parse({ role: 'dp', dataDir: '/tmp/x', answerCacheMaxAgeSeconds: 21600 })
        .answerCacheMaxAgeSeconds,
    ).toBe(21600);
  });
});

describe.each(stores)('a DP serving mappings as they expire, over the %s store', (kind) => {
  it('stops serving a mapping at its exp over UDP, TCP and DoH, also from its answer cache', async () => {
    const dir = join(root, `expiry-${kind}`);
    mkdirSync(dir, { recursive: true });
    // The clock starts at the real time so that dig and delv, which read the system clock, accept
    // the signatures; the test moves it by hand.
    const start = Math.floor(Date.now() / 1000);
    const clock = fakeClock(start);
    const soon: MappingSpec = { key: 21, exp: start + 1000 };
    const later: MappingSpec = { key: 22, exp: start + 3000 };
    const store =
      kind === 'memory'
        ? createMemoryStore({ proverSeed: PROVER_SEED, now: clock.now })
        : await openLmdbStore({
            dataDir: join(dir, 'store'),
            proverSeed: PROVER_SEED,
            now: clock.now,
          });
    await store.addZone(zoneInit());
    await store.apply(ORIGIN, [putMappings([soon, later])]);
    const ca = await createLocalCa();
    const leaf = await issueServerCertificate(ca, { hostnames: [], ipAddresses: ['127.0.0.1'] });
    writeFileSync(join(dir, 'cert.pem'), leaf.certPem);
    writeFileSync(join(dir, 'key.pem'), leaf.keyPem);
    const config = dpConfigSchema.parse({
      role: 'dp',
      dataDir: dir,
      listen: { udp: 0, tcp: 0, doh: 0, admin: 0 },
      tls: { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') },
      log: { level: 'error' },
    });
    const provider = await startDp(config, { store, now: clock.now });
    const doh = createDohClient({ ca: ca.certPem });
    try {
      const dns = provider.dns!;
      const udp = { host: '127.0.0.1', port: dns.udp!.port };
      const tcp = { host: '127.0.0.1', port: dns.tcp!.port };
      const transports = ['udp', 'tcp', 'doh'] as const;
      const ask = (over: (typeof transports)[number], dnssecOk = true): Promise<Message> => {
        const query = buildQuery(NUMBER, 'MAP', { dnssecOk });
        if (over === 'udp') return queryUdp(udp, query);
        if (over === 'tcp') return queryTcp(tcp, query);
        return doh.query(dns.doh!.url, query);
      };
      const hits = async (): Promise<number> => {
        const text = await fetch(`http://127.0.0.1:${provider.admin!.port}/metrics`).then((r) =>
          r.text(),
        );
        return Number(/^authoritative_answer_cache_hits_total (\d+)/m.exec(text)?.[1]);
      };

      // Both mappings, from the cache but for the first question over each transport (a DoH
      // query is padded, RFC 8467, so its octets, and its entry, are not TCP's).
      const first = await hits();
      for (const over of transports) {
        for (let i = 0; i < 2; i++) {
          expect(mapHex((await ask(over)).answers)).toEqual(specHex([soon, later]));
        }
      }
      expect(await hits()).toBe(first + 3);

      // 500 s before `soon`'s exp, an answer (TTL 300) is kept for 200 s: whoever gets the last
      // copy keeps it no later than the exp.
      clock.advance(500);
      for (const over of transports) await ask(over);
      clock.advance(199);
      const cached = await hits();
      for (const over of transports) {
        expect(mapHex((await ask(over)).answers)).toEqual(specHex([soon, later]));
      }
      expect(await hits()).toBe(cached + transports.length);

      // 100 s before the exp, the TTL is 100: an answer kept any time would outlive the exp.
      clock.advance(201);
      const close = await hits();
      for (const over of transports) {
        for (let i = 0; i < 2; i++) {
          const response = await ask(over);
          expect(mapHex(response.answers)).toEqual(specHex([soon, later]));
          expect(response.answers.map((rr) => rr.ttl)).toEqual([100, 100, 100]);
        }
      }
      expect(await hits()).toBe(close);

      // At `soon`'s exp: what is left, signed anew, TTL 300. No entry made before the exp is
      // used: every question is answered anew.
      clock.advance(100);
      const expired = await hits();
      for (const over of transports) {
        const response = await ask(over);
        expect(mapHex(response.answers), over).toEqual(specHex([later]));
        expect(response.answers.map((rr) => rr.ttl)).toEqual([300, 300]);
        expect(verifyIn(store, response.answers, 'MAP', clock.now())).toEqual({ kind: 'verified' });
        expect(mapHex((await ask(over, false)).answers)).toEqual(specHex([later]));
      }
      expect(await hits()).toBe(expired);

      // From 300 s before `later`'s exp, an answer's TTL reaches the exp: none is kept.
      clock.advance(1700);
      const last = await hits();
      for (const over of transports) {
        for (let i = 0; i < 2; i++) {
          expect((await ask(over)).answers.map((rr) => rr.ttl)).toEqual([300, 300]);
        }
      }
      clock.advance(100);
      expect((await ask('udp')).answers.map((rr) => rr.ttl)).toEqual([200, 200]);
      expect(await hits()).toBe(last);

      if (DIG) {
        const output = await run('dig', [
          '@127.0.0.1',
          '-p',
          String(udp.port),
          '+dnssec',
          '+norecurse',
          NUMBER,
          'TYPE65400',
        ]);
        // Answer lines only (the question line starts with `;`): one MAP, its RRSIG.
        expect(output.match(/^\S+\s+200\s+IN\s+TYPE65400\s/gm), output).toHaveLength(1);
        expect(output).toMatch(/^\S+\s+200\s+IN\s+RRSIG\s+TYPE65400 15 /m);
      }
      if (DELV) {
        // The RRset signed online validates from the zone's DS on its own, as BIND checks it.
        const dnskeys = store
          .readRRset(ORIGIN, ORIGIN, 'DNSKEY')
          .flatMap((rr): DnskeyData[] => (rr.type === 'DNSKEY' ? [rr.data] : []));
        const anchors = join(dir, 'anchors.conf');
        writeFileSync(
          anchors,
          formatBindTrustAnchors({ ...createTrustAnchor(ORIGIN, dnskeys), dnskeys: [] }),
        );
        const delv = (): Promise<string> =>
          run('delv', [
            '@127.0.0.1',
            '-p',
            String(udp.port),
            '-a',
            anchors,
            `+root=${ORIGIN}`,
            NUMBER,
            'TYPE65400',
          ]);
        const found = await delv();
        expect(found).toContain('; fully validated');
        expect(found.match(/^\S+\s+\d+\s+IN TYPE65400 /gm), found).toHaveLength(1);
        clock.advance(200);
        const none = await delv();
        expect(none).toContain('; negative response, fully validated');
      }

      // At `later`'s exp nothing is left: the name answers as absent.
      clock.advance(DELV ? 0 : 200);
      for (const over of transports) {
        const response = await ask(over);
        expect(response.rcode).toBe('NOERROR');
        expect(response.answers).toEqual([]);
        const nsec = response.authorities.find((rr) => rr.type === 'NSEC');
        expect(nsec?.type === 'NSEC' ? nsec.data.types : undefined).toEqual([
          'RRSIG',
          'NSEC',
          'TYPE128',
        ]);
      }
    } finally {
      await doh.close();
      await provider.close();
      await store.close();
    }
  });
});
