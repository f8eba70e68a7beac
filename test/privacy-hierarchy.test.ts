import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  canonicalName,
  csiToName,
  isSubdomain,
  namesEqual,
  parentName,
  parseCsi,
} from '@mimi-discovery/common';
import {
  createDiscoveryClient,
  type DiscoveryClient,
  type DiscoveryResult,
} from '@mimi-discovery/resolver';
import { freePortBlock } from './helpers/ports.js';
import {
  DEMO_PORTS,
  DEMO_READY_MS,
  startDemo,
  stopDemo,
  waitReady,
  type Demo,
  type NetworkFile,
  type NetworkServer,
} from './helpers/demo.js';

// The hierarchy's share of R6 (docs/privacy.md): a contact sync of 1,000 CSIs — phone and
// email, under delegated and undelegated ranges, a sub-delegation (+1 → +1202) and MAPREF
// targets in the MSP-run DP — through `mimi-discovery demo --query-log`, read back from every
// server's query log. The root and every parent DP must have received no name below their own
// delegation points (so, with QNAME minimisation, no subscriber number and no email hash), and
// the results must be those the same sync gave before minimisation and the local root copy
// (test/fixtures/privacy-sync-before.json: this sync run against commit 6bf9b9b, whose resolver
// sent full names to the root and to parent DPs).

/** CSIs in the sync, the demo's examples among them. */
const SYNC_SIZE = 1000;

/** Generated CSIs, as people type them: `count` of each family, deterministic. */
const FAMILIES: ReadonlyArray<{ count: number; make: (i: number) => string }> = [
  // +44: a range DP that holds its numbers.
  { count: 270, make: (i) => `+44 20 7946 ${String(1000 + i).padStart(4, '0')}` },
  // +1 outside +1202: numbers the parent DP holds itself.
  { count: 120, make: (i) => `+1 415 555 ${String(1000 + i).padStart(4, '0')}` },
  // +1202: numbers of the sub-delegation, through the parent.
  { count: 150, make: (i) => `+1 202 555 ${String(1000 + i).padStart(4, '0')}` },
  // +33 and +49: country codes with no DP.
  { count: 100, make: (i) => `+33 1 42 68 ${String(1000 + i).padStart(4, '0')}` },
  { count: 100, make: (i) => `+49 30 1234 ${String(1000 + i).padStart(4, '0')}` },
  // Email: a delegated domain, the MSP's own domain, and a domain with no DP.
  { count: 120, make: (i) => `person${i}@example.com` },
  { count: 50, make: (i) => `member${i}@chat.example` },
  { count: 100, make: (i) => `someone${i}@example.org` },
];

/** One CSI's result as compared across runs: what a sender acts on, without times or keys. */
type Summary = [csi: string, status: string, providers: string[], zones: string[]];

function summary(csi: string, d: DiscoveryResult): Summary {
  return [
    csi,
    d.status,
    [...new Set(d.mappings.flatMap((m) => m.msps.map((msp) => msp.provider)))].sort(),
    [...new Set(d.mappings.map((m) => m.zone))].sort(),
  ];
}

/** The query log of `server`: the names asked, lowercase, in order. */
function namesAsked(server: NetworkServer): string[] {
  if (typeof server.queryLog !== 'string') throw new Error(`${server.name} keeps no query log`);
  return readFileSync(server.queryLog, 'utf8')
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => {
      const entry = JSON.parse(line) as { name?: unknown; peer?: unknown };
      if (typeof entry.name !== 'string')
        throw new Error(`a query log line without a name: ${line}`);
      // The peer is off by default: the log names no client.
      expect(entry.peer).toBeUndefined();
      return canonicalName(entry.name);
    });
}

/** Every name of a zone with these delegation points: the apex, the cuts and the names between. */
function namesHeld(apex: string, cuts: readonly string[]): Set<string> {
  const held = new Set([canonicalName(apex)]);
  for (const cut of cuts) {
    for (let at: string | undefined = canonicalName(cut); at !== undefined;) {
      if (!isSubdomain(at, apex)) break;
      held.add(at);
      if (namesEqual(at, apex)) break;
      at = parentName(at);
    }
  }
  return held;
}

let dir: string;
let demo: Demo | undefined;
let net: NetworkFile;
let api: DiscoveryClient;
let csis: string[];
let results: DiscoveryResult[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mimi-privacy-'));
  const portBase = await freePortBlock(DEMO_PORTS);
  demo = startDemo(['--dir', dir, '--port-base', String(portBase), '--query-log']);
  await waitReady(demo);
  net = JSON.parse(readFileSync(join(dir, 'network.json'), 'utf8')) as NetworkFile;
  api = createDiscoveryClient({ url: net.resolver.api, ca: readFileSync(net.ca, 'utf8') });
  const examples = net.examples.map((e) => e.csi);
  const taken = new Set(net.examples.map((e) => e.canonical));
  const generated = FAMILIES.flatMap(({ count, make }) =>
    Array.from({ length: count }, (_, i) => make(i)),
  ).filter((csi) => !taken.has(parseCsi(csi)));
  csis = [...examples, ...generated].slice(0, SYNC_SIZE);
  expect(csis).toHaveLength(SYNC_SIZE);
  results = await api.discoverMany(csis);
  // Query logs are written behind the answers: wait until every line is on disk.
  await new Promise((r) => setTimeout(r, 1500));
}, DEMO_READY_MS + 120_000);

afterAll(async () => {
  await stopDemo(demo);
  await api?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('a contact sync of 1,000 CSIs through the demo network (R6, docs/privacy.md)', () => {
  it('gets the results the sync gave before minimisation and the root copy', () => {
    const before = JSON.parse(
      readFileSync(join(import.meta.dirname, 'fixtures', 'privacy-sync-before.json'), 'utf8'),
    ) as Summary[];
    const after = csis.map((csi, i) => summary(csi, results[i] as DiscoveryResult));
    expect(after).toEqual(before);
    // And the demo's own expectations for its examples.
    for (const e of net.examples) {
      const got = after.find(([csi]) => csi === e.csi);
      expect(got?.[1], e.csi).toBe(e.expect);
    }
    expect(after.filter(([, status]) => status === 'error')).toEqual([]);
  });

  it('shows the root and every parent DP no name below their delegation points', () => {
    const apex = net.servers.find((s) => s.role === 'root')?.zones[0] ?? 'mimi.arpa';
    const delegators = net.servers.filter((s) =>
      net.servers.some((child) => child.parent === s.name),
    );
    expect(delegators.map((s) => s.name).sort()).toEqual(['dp1', 'root']);
    for (const server of delegators) {
      const cuts = net.servers.filter((c) => c.parent === server.name).flatMap((c) => c.zones);
      const asked = namesAsked(server);
      expect(asked.length, server.name).toBeGreaterThan(0);
      const below = asked.filter((name) =>
        cuts.some((cut) => isSubdomain(name, cut) && !namesEqual(name, cut)),
      );
      expect(below, `${server.name} was asked names below its delegations`).toEqual([]);
      if (server.role === 'root') {
        // The root holds only delegations: every name it was asked is one it holds or one label
        // below one (the denial of a range with no DP: `3.e164` for +33, `org.email` for
        // @example.org), never a CSI's name.
        const held = namesHeld(apex, cuts);
        const deeper = asked.filter((name) => !held.has(name) && !held.has(parentName(name) ?? ''));
        expect(deeper, 'the root was asked names more than one label below its own').toEqual([]);
        // With the resolver's copy of the root zone, the root is asked only what the copy
        // cannot answer: the first missing label under a range with no DP (docs/privacy.md).
        // Besides, the demo's own check through the relay may walk, as a sender's app does,
        // from the root hints to the gateway's KEYCONF (`lookup --key-name`, key consistency):
        // when its resolver's copy of the root zone is not there yet, the root is asked the
        // names down to the MSP's zone cut, above the gateway's key name and no CSI's.
        const keyCheck = (name: string): boolean =>
          isSubdomain(net.gateway.keyName, name) && !namesEqual(net.gateway.keyName, name);
        const lookups = asked.filter((name) => !namesEqual(name, apex) && !keyCheck(name));
        expect(new Set(lookups)).toEqual(
          new Set([`3.e164.${apex}`, `9.4.e164.${apex}`, `org.email.${apex}`]),
        );
      }
    }
  });

  it('shows the DPs that hold the CSIs their names, and no DP a CSI outside its zones', () => {
    for (const server of net.servers.filter((s) => s.role === 'dp')) {
      for (const name of namesAsked(server)) {
        expect(
          server.zones.some((zone) => isSubdomain(name, zone)),
          `${server.name} was asked ${name}`,
        ).toBe(true);
      }
    }
    // The DP of a range is asked the full names of its CSIs: it serves them.
    const leaf = net.servers.find((s) => s.name === 'dp44') as NetworkServer;
    const asked = new Set(namesAsked(leaf));
    const numbers = csis.map((csi) => parseCsi(csi)).filter((csi) => csi.startsWith('tel:+44'));
    expect(numbers.length).toBeGreaterThan(200);
    for (const csi of numbers)
      expect(asked.has(canonicalName(csiToName(csi, 'mimi.arpa')))).toBe(true);
  });
});
