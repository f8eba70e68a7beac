import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildQuery,
  createTrustAnchor,
  createTsigKey,
  csiToName,
  formatTrustAnchor,
  formatTsigKeyFile,
  keyPairFromSeed,
  parseConfig,
  parseCsi,
  queryUdp,
  transferZone,
  type Message,
  type RRType,
} from '@mimi-discovery/common';
import {
  createRegistrationClient,
  dpConfigSchema,
  startDp,
  type RunningDp,
} from '@mimi-discovery/authoritative';
import {
  APEX,
  createLoopbackDir,
  initServer,
  type LoopbackDir,
} from '../examples/loopback-network.js';
import { PHONE_ZONE, TEST_REGISTRATION_LIMITS } from './helpers/network.js';
import { freePort } from './helpers/ports.js';
import {
  attestAndPublish,
  removeMapping,
  type RegistrationEndpoint,
} from './helpers/registration.js';
import {
  missingSecondaries,
  startKnot,
  startNsd,
  type RunningSecondary,
} from './helpers/secondaries.js';
import { missingTools, runTool } from './helpers/tools.js';
import { runUnbound, unboundConfig, type UnboundProcess } from './helpers/unbound.js';

// A DP as the hidden primary of stock secondaries (issue 14, docs/operations.md): NSD and Knot
// transfer its zone with TSIG (AXFR, then IXFR on each NOTIFY), and a validating Unbound that
// knows only the secondaries and the zone's key validates what they serve: a mapping (found),
// and the NSEC3 denial of a CSI that has none (none). Transfers without the key are refused.

const MISSING = new Set([
  ...missingSecondaries(),
  ...missingTools({ unbound: 'unbound', kdig: 'knot-dnsutils' }),
]);
const SKIP = MISSING.size > 0;

const ZONE = PHONE_ZONE;
const KEY = createTsigKey('xfr.4.4.e164.mimi.arpa', 'hmac-sha256', new Uint8Array(32).fill(0x6b));
/** How long a publish may take to reach both secondaries (the "within 5 s"). */
const PROPAGATION_MS = 5_000;

const alice = keyPairFromSeed(new Uint8Array(32).fill(0x61));
const bob = keyPairFromSeed(new Uint8Array(32).fill(0x62));
const ALICE = parseCsi('tel:+447700900123');
const BOB = parseCsi('tel:+447700900456');
const NOBODY = parseCsi('tel:+447700900999');

let files: LoopbackDir;
let dp: RunningDp;
let api: RegistrationEndpoint;
let nsd: RunningSecondary;
let knot: RunningSecondary;
let unbound: UnboundProcess | undefined;
let unboundPort = 0;

const dpPort = (): number => dp.dns?.tcp?.port ?? 0;

async function ask(port: number, name: string, type: RRType, rd = false): Promise<Message> {
  const query = buildQuery(name, type, { dnssecOk: true, recursionDesired: rd });
  return queryUdp({ host: '127.0.0.1', port }, query, { timeoutMs: 2000 });
}

async function serialAt(port: number): Promise<number | undefined> {
  try {
    const soa = (await ask(port, ZONE, 'SOA')).answers.find((rr) => rr.type === 'SOA');
    return soa?.type === 'SOA' ? soa.data.serial : undefined;
  } catch {
    return undefined;
  }
}

/** Waits until `check` holds, polling; returns the milliseconds it took. */
async function within(ms: number, what: string, check: () => Promise<boolean>): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (await check()) return performance.now() - started;
    if (performance.now() - started > ms) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The count of `authoritative_transfers_total{type,outcome="ok"}` on the DP's metrics. */
async function transfers(type: string): Promise<number> {
  const text = await (await fetch(`${dp.admin?.url ?? ''}/metrics`)).text();
  const line = new RegExp(
    `^authoritative_transfers_total\\{type="${type}",outcome="ok"\\} (\\d+)`,
    'm',
  );
  return Number(line.exec(text)?.[1] ?? 0);
}

/** The count of `authoritative_notifies_total{outcome}` on the DP's metrics. */
async function notifies(outcome: string): Promise<number> {
  const text = await (await fetch(`${dp.admin?.url ?? ''}/metrics`)).text();
  const line = new RegExp(`^authoritative_notifies_total\\{outcome="${outcome}"\\} (\\d+)`, 'm');
  return Number(line.exec(text)?.[1] ?? 0);
}

const secondaries = (): RunningSecondary[] => [nsd, knot];

beforeAll(async () => {
  if (SKIP) return;
  files = await createLoopbackDir('mimi-secondaries');
  const dataDir = join(files.dir, 'dp');
  await initServer(dataDir, [ZONE]);
  const keyFile = join(files.dir, 'xfr.key');
  writeFileSync(keyFile, formatTsigKeyFile(KEY), { mode: 0o600 });
  const nsdPort = await freePort();
  const knotPort = await freePort();
  const outbox = join(dataDir, 'outbox.jsonl');
  const config = parseConfig(dpConfigSchema, {
    role: 'dp',
    dataDir,
    apex: APEX,
    listen: { udp: 0, tcp: 0, api: 0, admin: 0 },
    tls: files.tls,
    registration: { ...TEST_REGISTRATION_LIMITS, channels: { outbox: { path: outbox } } },
    log: { level: 'error' },
    // The hidden primary: transfers only with the key, NOTIFY to both secondaries.
    transfer: {
      allow: ['127.0.0.0/8'],
      // Both secondaries come from 127.0.0.1, one client for the per-client bound.
      transfersPerClient: 2,
      keys: [{ name: KEY.name, secretFile: keyFile }],
      notify: [
        { address: '127.0.0.1', port: nsdPort, key: KEY.name },
        { address: '127.0.0.1', port: knotPort, key: KEY.name },
      ],
      notifyTimeoutMs: 500,
    },
  });
  dp = await startDp(config);
  const url = dp.api?.url ?? '';
  api = { url, outbox, client: createRegistrationClient({ url, ca: files.caPem }) };
  const primary = { zone: ZONE, primaryPort: dpPort(), key: KEY };
  nsd = await startNsd({ ...primary, dir: join(files.dir, 'nsd'), port: nsdPort });
  knot = await startKnot({ ...primary, dir: join(files.dir, 'knot'), port: knotPort });
  // Unbound knows the zone's key (an island of trust) and only the two secondaries.
  const dnskey = dp.store.readRRset(ZONE, ZONE, 'DNSKEY')[0];
  if (dnskey?.type !== 'DNSKEY') throw new Error('the zone has no DNSKEY');
  const anchorFile = join(files.dir, 'zone.anchor');
  writeFileSync(anchorFile, formatTrustAnchor(createTrustAnchor(ZONE, [dnskey.data])));
  unboundPort = await freePort();
  const unboundDir = join(files.dir, 'unbound');
  mkdirSync(unboundDir);
  unbound = await runUnbound(
    unboundDir,
    `${unboundConfig({ dir: unboundDir, port: unboundPort, trustAnchorFile: anchorFile, stubs: [] })}stub-zone:\n  name: "${ZONE}"\n  stub-addr: 127.0.0.1@${nsd.port}\n  stub-addr: 127.0.0.1@${knot.port}\n`,
  );
}, 60_000);

afterAll(async () => {
  await unbound?.stop();
  await knot?.stop();
  await nsd?.stop();
  await api?.client.close();
  await dp?.close();
  files?.remove();
});

describe('NSD and Knot as secondaries of a DP (hidden primary, TSIG)', () => {
  it.skipIf(SKIP)('both transfer the zone, with its NSEC3 chain', async () => {
    const serial = dp.store.zoneInfo(ZONE)?.serial;
    for (const secondary of secondaries()) {
      await within(
        15_000,
        `${secondary.kind} serves serial ${serial}`,
        async () => (await serialAt(secondary.port)) === serial,
      ).catch((error: unknown) => {
        throw new Error(`${String(error)}\n${secondary.log()}`);
      });
      const param = await ask(secondary.port, ZONE, 'NSEC3PARAM');
      expect(
        param.answers.some((rr) => rr.type === 'NSEC3PARAM'),
        secondary.log(),
      ).toBe(true);
    }
  });

  it.skipIf(SKIP)('a publish reaches both by NOTIFY and IXFR within 5 s', async () => {
    const incrementalBefore = await transfers('ixfr');
    const fullBefore = (await transfers('axfr')) + (await transfers('ixfr-full'));
    const acknowledgedBefore = await notifies('acknowledged');
    const { response } = await attestAndPublish(api, ALICE, alice);
    expect(response.status).toBe(201);
    const name = csiToName(ALICE);
    for (const secondary of secondaries()) {
      const took = await within(PROPAGATION_MS, `${secondary.kind} serves the mapping`, async () =>
        (await ask(secondary.port, name, 'MAP')).answers.some((rr) => rr.type === 'MAP'),
      ).catch((error: unknown) => {
        throw new Error(`${String(error)}\n${secondary.log()}`);
      });
      expect(took).toBeLessThan(PROPAGATION_MS);
    }
    // By IXFR: one incremental transfer per secondary at least (counted once its last message
    // is written, which the secondary may have applied already), and no whole zone.
    await within(
      2000,
      'two incremental transfers counted',
      async () => (await transfers('ixfr')) >= incrementalBefore + 2,
    );
    expect((await transfers('axfr')) + (await transfers('ixfr-full'))).toBe(fullBefore);
    // Both answered the signed NOTIFY with an answer signed back (RFC 8945 §5.3).
    await within(
      2000,
      'two NOTIFYs acknowledged',
      async () => (await notifies('acknowledged')) >= acknowledgedBefore + 2,
    );
    expect(knot.log()).toMatch(new RegExp(`\\[${ZONE.replace(/\./g, '\\.')}\\.\\] IXFR, incoming`));
  });

  it.skipIf(SKIP)('a removal reaches both by IXFR within 5 s', async () => {
    const { response } = await attestAndPublish(api, BOB, bob);
    expect(response.status).toBe(201);
    const name = csiToName(BOB);
    for (const secondary of secondaries()) {
      await within(PROPAGATION_MS, `${secondary.kind} serves Bob's mapping`, async () =>
        (await ask(secondary.port, name, 'MAP')).answers.some((rr) => rr.type === 'MAP'),
      );
    }
    const incrementalBefore = await transfers('ixfr');
    const removed = await removeMapping(api.client, BOB, bob, 1);
    expect(removed.status).toBe(200);
    for (const secondary of secondaries()) {
      const took = await within(
        PROPAGATION_MS,
        `${secondary.kind} drops Bob's mapping`,
        async () => {
          const answer = await ask(secondary.port, name, 'MAP');
          return !answer.answers.some((rr) => rr.type === 'MAP');
        },
      ).catch((error: unknown) => {
        throw new Error(`${String(error)}\n${secondary.log()}`);
      });
      expect(took).toBeLessThan(PROPAGATION_MS);
    }
    await within(
      2000,
      'two incremental transfers counted',
      async () => (await transfers('ixfr')) >= incrementalBefore + 2,
    );
  });

  it.skipIf(SKIP)(
    'a validating Unbound that knows only the secondaries validates found and none (AD)',
    async () => {
      const found = await ask(unboundPort, csiToName(ALICE), 'MAP', true);
      expect(found.rcode, unbound?.log()).toBe('NOERROR');
      expect(found.flags.ad, unbound?.log()).toBe(true);
      expect(found.answers.filter((rr) => rr.type === 'MAP')).toHaveLength(1);
      // None: the secondaries cannot sign a denial online; the NSEC3 chain proves it.
      for (const csi of [NOBODY, BOB]) {
        const none = await ask(unboundPort, csiToName(csi), 'MAP', true);
        expect(none.rcode, unbound?.log()).toBe('NXDOMAIN');
        expect(none.flags.ad, unbound?.log()).toBe(true);
        expect(none.answers).toEqual([]);
      }
    },
  );

  it.skipIf(SKIP)('refuses transfers without the key, or with another', async () => {
    const address = { host: '127.0.0.1', port: dpPort() };
    await expect(transferZone(address, ZONE)).rejects.toMatchObject({
      code: 'ERR_TRANSFER_REFUSED',
    });
    const kdig = await runTool('kdig', ['@127.0.0.1', '-p', String(dpPort()), ZONE, 'AXFR']);
    expect(kdig.output).toMatch(/REFUSED/);
    const wrong = createTsigKey(KEY.name, 'hmac-sha256', new Uint8Array(32).fill(1));
    const other = await runTool('kdig', [
      '-y',
      `hmac-sha256:${wrong.name}:${Buffer.from(wrong.secret).toString('base64')}`,
      '@127.0.0.1',
      '-p',
      String(dpPort()),
      ZONE,
      'AXFR',
    ]);
    expect(other.output).toMatch(/NOTAUTH|BADSIG/);
    const signed = await runTool('kdig', [
      '-y',
      `hmac-sha256:${KEY.name}:${Buffer.from(KEY.secret).toString('base64')}`,
      '@127.0.0.1',
      '-p',
      String(dpPort()),
      ZONE,
      'AXFR',
    ]);
    expect(signed.output).toMatch(/;; Received \d+ B \(\d+ messages, \d+ records\)/);
    expect(signed.output).not.toMatch(/failed|BADSIG|BADTIME/);
  });
});
