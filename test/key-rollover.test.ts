import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildQuery,
  canonicalName,
  computeDs,
  computeKeyTag,
  createLogger,
  csiToName,
  formatTrustAnchor,
  parseConfig,
  parseCsi,
  queryUdp,
  record,
  type DsData,
  type Message,
  type ResourceRecord,
} from '@mimi-discovery/common';
import {
  delegate,
  dpConfigSchema,
  openConfiguredStore,
  startDp,
  type DpConfig,
  type RollStatus,
  type RunningDp,
} from '@mimi-discovery/authoritative';
import { formatRootHints, rootTrustAnchor } from '@mimi-discovery/root';
import { runCli, type CliResult } from '@mimi-discovery/cli';
import { APEX, createLoopbackDir, delegationTo } from '../examples/loopback-network.js';
import { freePort } from './helpers/ports.js';
import { runUnbound, type UnboundProcess } from './helpers/unbound.js';

// Issue 15, "done when": the signing keys of the root (RFC 5011) and of the +44 DP roll, with the
// policy's steps and no operator command, while lookups run continuously through our resolver
// and through a validating Unbound that follows the root by RFC 5011 (`auto-trust-anchor-file`);
// no lookup fails validation at any point, and the DS at the root changes by CDS (the root's CDS
// poller) alone.
//
// Real clock (Unbound validates with it), small timings: every TTL of both zones is 2 s, the
// policies' margins 1 s, the resolvers' add hold-down 5 s and the root's 8 s (it must be at least
// theirs). The parent's DS TTL is asserted to be 2 s in the DP's policy: the DS sets that lack the
// new key (the one before the roll) are served with that TTL.

const PHONE_ZONE = `4.4.e164.${APEX}`;
const TTL = 2;
const RESOLVER_HOLD_DOWN = 5;
const ROOT_HOLD_DOWN = 8;
/** Longest the whole test may take: both rolls end well within it. */
const ROLL_DEADLINE_MS = 300_000;
/** Pause between two rounds of lookups. */
const LOOKUP_PAUSE_MS = 150;

const hasUnbound = spawnSync('sh', ['-c', 'command -v unbound']).status === 0;
if (!hasUnbound) console.warn('unbound not installed (Debian package unbound): skipping');

const policy = {
  keyLifetimeSeconds: 0,
  propagationDelaySeconds: 1,
  publishSafetySeconds: 1,
  retireSafetySeconds: 1,
  registrationDelaySeconds: 3600,
};

interface Lookup {
  via: 'resolver' | 'unbound';
  name: string;
  type: 'SOA' | 'DS' | 'DNSKEY' | 'MAP';
  at: number;
  rcode: string;
  ad: boolean;
}

let files: Awaited<ReturnType<typeof createLoopbackDir>>;
let root: RunningDp;
let dp: RunningDp;
let unbound: UnboundProcess | undefined;
let resolverPort = 0;
let stopResolver: (() => Promise<CliResult>) | undefined;
const logs: string[] = [];

/** Creates a zone with every TTL small, its nameserver's address in it; its DS. */
async function initZone(config: DpConfig, zone: string): Promise<DsData> {
  const store = await openConfiguredStore(config, {});
  try {
    const ns = `ns1.${zone}`;
    await store.addZone({
      origin: zone,
      nameservers: [ns],
      mname: ns,
      rname: `hostmaster.${zone}`,
      ttl: TTL,
      authkeyTtl: TTL,
      minimum: TTL,
      // Our resolver keeps a copy of the root zone (RFC 8806), refreshed at the SOA refresh: a
      // DS change reaches it within this, as the DS TTL bounds what other caches hold.
      refresh: TTL,
    });
    await store.apply(zone, [
      { op: 'put', name: ns, type: 'A', records: [record(ns, 'A', '127.0.0.1', TTL)] },
    ]);
    const dnskey = store.readRRset(zone, zone, 'DNSKEY')[0];
    if (dnskey?.type !== 'DNSKEY') throw new Error(`zone ${zone} has no DNSKEY`);
    return computeDs(zone, dnskey.data);
  } finally {
    await store.close();
  }
}

function dpConfig(
  role: 'root' | 'dp',
  dir: string,
  listen: { udp: number; doh: number },
  extra: Record<string, unknown>,
): DpConfig {
  return parseConfig(dpConfigSchema, {
    role,
    dataDir: join(files.dir, dir),
    apex: APEX,
    listen: { host: '127.0.0.1', udp: listen.udp, tcp: listen.udp, doh: listen.doh },
    tls: files.tls,
    log: { level: 'debug' },
    ...extra,
  });
}

/** Re-puts the delegation of `zone` at the root with every TTL small (`delegate` uses 3600). */
async function shortenDelegation(zone: string): Promise<void> {
  const groups = new Map<string, ResourceRecord[]>();
  for (const rr of root.store.readZone(APEX)) {
    if (rr.type === 'RRSIG' || rr.type === 'NSEC3' || rr.type === 'NSEC') continue;
    const name = canonicalName(rr.name);
    if (name !== zone && !name.endsWith(`.${zone}`)) continue;
    const key = `${name} ${rr.type}`;
    groups.set(key, [...(groups.get(key) ?? []), { ...rr, ttl: TTL }]);
  }
  await root.store.apply(
    APEX,
    [...groups.values()].map((records) => ({
      op: 'put' as const,
      name: canonicalName(records[0]?.name ?? zone),
      type: records[0]?.type ?? 'NS',
      records,
    })),
  );
}

async function ask(via: Lookup['via'], name: string, type: Lookup['type']): Promise<Lookup> {
  const port = via === 'unbound' ? (unboundPort ?? 0) : resolverPort;
  const at = Date.now();
  try {
    const response: Message = await queryUdp(
      { host: '127.0.0.1', port },
      buildQuery(name, type, { dnssecOk: true, recursionDesired: true }),
      { timeoutMs: 4000 },
    );
    return { via, name, type, at, rcode: response.rcode, ad: response.flags.ad };
  } catch (error) {
    return { via, name, type, at, rcode: `no answer: ${String(error)}`, ad: false };
  }
}

let unboundPort: number | undefined;

beforeAll(async () => {
  if (!hasUnbound) return;
  files = await createLoopbackDir('mimi-key-roll');
  const rootPort = await freePort();
  const rootDoh = await freePort();
  // The DP's DNS port, fixed before the root starts: the root's CDS poller asks its children
  // over TCP at one port (`cds.port`, 53 in a real network).
  const phonePort = await freePort();
  const rootConfig = dpConfig(
    'root',
    'root',
    { udp: rootPort, doh: rootDoh },
    {
      dnssec: {
        policy: { ...policy, addHoldDownSeconds: ROOT_HOLD_DOWN, revokeSeconds: 5 },
        checkIntervalSeconds: 1,
      },
      // The root polls its children's CDS every second (`cds`, the CDS poller).
      cds: { intervalSeconds: 1, port: phonePort },
      // AUTHKEY at the apex with the zone's small TTL, so the largest TTL of the zone is 2 s.
      authkeyTtl: TTL,
    },
  );
  await initZone(rootConfig, APEX);
  const phoneConfig = dpConfig(
    'dp',
    'phone',
    { udp: phonePort, doh: 0 },
    {
      dnssec: {
        policy: { ...policy, dsTtlSeconds: TTL },
        parent: [{ address: '127.0.0.1', port: rootPort }],
        checkIntervalSeconds: 1,
      },
      authkeyTtl: TTL,
    },
  );
  const phoneDs = await initZone(phoneConfig, PHONE_ZONE);
  const log = createLogger('roll', { level: 'debug', write: (line) => logs.push(line) });
  root = await startDp(rootConfig, { log: log.child('root') });
  dp = await startDp(phoneConfig, { log: log.child('dp') });
  await delegate(root.store, APEX, delegationTo(PHONE_ZONE, dp, phoneDs));
  await shortenDelegation(PHONE_ZONE);

  const anchor = formatTrustAnchor(rootTrustAnchor(root.store, APEX));
  const hints = join(files.dir, 'root-hints.json');
  writeFileSync(
    hints,
    formatRootHints({
      apex: APEX,
      servers: [
        {
          name: `ns1.${APEX}`,
          addresses: ['127.0.0.1'],
          port: rootPort,
          doh: `https://127.0.0.1:${rootDoh}/dns-query`,
        },
      ],
    }),
  );
  writeFileSync(join(files.dir, 'resolver.key'), anchor);
  writeFileSync(join(files.dir, 'unbound-root.key'), anchor);

  // Our resolver, as `resolver serve` runs it, following the root by RFC 5011.
  writeFileSync(
    join(files.dir, 'resolver.json'),
    JSON.stringify({
      rootHints: hints,
      trustAnchor: join(files.dir, 'resolver.key'),
      ca: files.caFile,
      listen: { host: '127.0.0.1', udp: 0 },
      rootCopy: { enabled: true, refreshSeconds: 1 },
      autoTrustAnchor: {
        addHoldDownSeconds: RESOLVER_HOLD_DOWN,
        removeHoldDownSeconds: RESOLVER_HOLD_DOWN,
        maxProbeSeconds: 1,
      },
      log: { level: 'debug' },
    }),
  );
  const stop = new AbortController();
  let stdout = '';
  let printed: () => void = () => undefined;
  const first = new Promise<undefined>((resolve) => {
    printed = () => resolve(undefined);
  });
  const running = runCli(['resolver', 'serve', '--json', '--config', 'resolver.json'], {
    cwd: files.dir,
    env: {},
    log: log.child('resolver'),
    signal: stop.signal,
    stdout: (text) => {
      stdout += text;
      printed();
    },
  });
  const early = await Promise.race([first, running]);
  if (early !== undefined) throw new Error(`resolver serve exited: ${early.stderr}`);
  await new Promise((resolve) => setImmediate(resolve));
  const udp = stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { listener: string; port: number })
    .find((l) => l.listener === 'udp');
  resolverPort = udp?.port ?? 0;
  stopResolver = () => {
    stop.abort();
    return running;
  };

  // A stock Unbound following the root by RFC 5011, with small hold-downs.
  unboundPort = await freePort();
  unbound = await runUnbound(
    files.dir,
    [
      'server:',
      '  interface: 127.0.0.1',
      `  port: ${unboundPort}`,
      '  do-ip6: no',
      '  do-not-query-localhost: no',
      `  auto-trust-anchor-file: "${join(files.dir, 'unbound-root.key')}"`,
      `  add-holddown: ${RESOLVER_HOLD_DOWN}`,
      `  del-holddown: ${RESOLVER_HOLD_DOWN}`,
      '  keep-missing: 1',
      '  permit-small-holddown: yes',
      '  module-config: "validator iterator"',
      '  chroot: ""',
      '  username: ""',
      `  directory: "${files.dir}"`,
      `  pidfile: "${join(files.dir, 'unbound.pid')}"`,
      '  use-syslog: no',
      '  logfile: ""',
      '  verbosity: 1',
      '  val-log-level: 2',
      '  harden-dnssec-stripped: yes',
      'stub-zone:',
      `  name: "${APEX}"`,
      `  stub-addr: 127.0.0.1@${rootPort}`,
      'stub-zone:',
      `  name: "${PHONE_ZONE}"`,
      `  stub-addr: 127.0.0.1@${dp.dns?.udp?.port ?? 0}`,
      '',
    ].join('\n'),
  );
}, 60_000);

afterAll(async () => {
  await unbound?.stop();
  await stopResolver?.();
  await dp?.close();
  await root?.close();
  files?.remove();
});

/**
 * A lookup that did not validate: no answer, SERVFAIL, or an answer without AD. The unknown CSI
 * is denied by a compact denial (RFC 9824): our resolver restores NXDOMAIN from its NXNAME bit,
 * Unbound keeps NOERROR; both validated.
 */
function failedValidation(l: Lookup): boolean {
  return !(l.rcode === 'NOERROR' || l.rcode === 'NXDOMAIN') || !l.ad;
}

/** The zone's roll, from the running server's roller. */
function rollOf(server: RunningDp, zone: string): RollStatus {
  const status = server.roller?.status(zone)[0];
  if (status === undefined) throw new Error(`no roller status for ${zone}`);
  return status;
}

describe('key rollover with lookups running', () => {
  it.skipIf(!hasUnbound)(
    'rolls the root (RFC 5011) and the +44 DP with no failed validation, the DS moved by CDS',
    async () => {
      const unknown = csiToName(parseCsi('tel:+447700900999'));
      const questions: Array<[string, Lookup['type']]> = [
        [APEX, 'SOA'],
        [APEX, 'DNSKEY'],
        [PHONE_ZONE, 'DS'],
        [PHONE_ZONE, 'SOA'],
        [unknown, 'MAP'],
      ];
      const lookups: Lookup[] = [];
      const round = async (): Promise<void> => {
        const answers = await Promise.all(
          questions.flatMap(([name, type]) => [
            ask('resolver', name, type),
            ask('unbound', name, type),
          ]),
        );
        lookups.push(...answers);
      };
      // Both validators work before the roll.
      await round();
      expect(lookups.filter(failedValidation), unbound?.log()).toEqual([]);

      const rootBefore = rollOf(root, APEX).keys.map((k) => k.keyTag);
      const dpBefore = rollOf(dp, PHONE_ZONE).keys.map((k) => k.keyTag);
      expect(rootBefore).toHaveLength(1);
      expect(dpBefore).toHaveLength(1);
      const started = await Promise.all([root.roller?.roll(APEX), dp.roller?.roll(PHONE_ZONE)]);
      expect(started.map((s) => s?.phase)).toEqual(['switching', 'publishing']);

      const phases = new Set<string>();
      const deadline = Date.now() + ROLL_DEADLINE_MS;
      let done = false;
      while (!done && Date.now() < deadline) {
        await round();
        const r = rollOf(root, APEX);
        const d = rollOf(dp, PHONE_ZONE);
        phases.add(`root:${r.phase}`);
        phases.add(`dp:${d.phase}`);
        done =
          r.phase === 'idle' &&
          d.phase === 'idle' &&
          r.keys.length === 1 &&
          d.keys.length === 1 &&
          r.keys[0]?.keyTag !== rootBefore[0] &&
          d.keys[0]?.keyTag !== dpBefore[0];
        await new Promise((resolve) => setTimeout(resolve, LOOKUP_PAUSE_MS));
      }
      // A few more rounds once both rolls are over.
      for (let i = 0; i < 10; i++) await round();

      const failed = lookups.filter(failedValidation);
      expect(failed, `${unbound?.log() ?? ''}\n${logs.slice(-50).join('\n')}`).toEqual([]);
      expect(
        done,
        JSON.stringify({
          phases: [...phases],
          root: [rollOf(root, APEX), root.store.signatureStatus(APEX)],
          dp: [rollOf(dp, PHONE_ZONE), dp.store.signatureStatus(PHONE_ZONE)],
          ds: root.store.readRRset(APEX, PHONE_ZONE, 'DS'),
          cds: dp.store.readRRset(PHONE_ZONE, PHONE_ZONE, 'CDS'),
        }),
      ).toBe(true);
      // Each roll went through its steps.
      expect([...phases]).toEqual(
        expect.arrayContaining([
          'root:switching',
          'root:retiring',
          'root:revoking',
          'root:idle',
          'dp:publishing',
          'dp:waiting-parent',
          'dp:switching',
          'dp:retiring',
          'dp:idle',
        ]),
      );

      // The DS at the root names only the DP's new key: moved by its CDS, with no command.
      const dpKey = rollOf(dp, PHONE_ZONE).keys[0]?.keyTag;
      const ds = root.store
        .readRRset(APEX, PHONE_ZONE, 'DS')
        .map((rr) => (rr.type === 'DS' ? rr.data.keyTag : -1));
      expect(ds).toEqual([dpKey]);

      // Both validators now trust the root's new key (their anchor files, written by them).
      const rootKey = root.store.readRRset(APEX, APEX, 'DNSKEY')[0];
      if (rootKey?.type !== 'DNSKEY') throw new Error('the root has no DNSKEY');
      const tag = String(computeKeyTag(rootKey.data));
      expect(readFileSync(join(files.dir, 'unbound-root.key'), 'utf8')).toMatch(
        new RegExp(`id = ${tag} .*VALID`),
      );
      expect(readFileSync(join(files.dir, 'resolver.key'), 'utf8')).toContain(tag);
    },
    ROLL_DEADLINE_MS + 60_000,
  );
});
