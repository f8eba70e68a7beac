import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildQuery,
  csiToName,
  formatBindTrustAnchors,
  keyPairFromSeed,
  parseCsi,
  queryUdp,
  type Message,
} from '@mimi-discovery/common';
import { rootTrustAnchor } from '@mimi-discovery/root';
import { SUB_ZONE, buildHierarchy, unrelatedDs, type Hierarchy } from './helpers/hierarchy.js';
import { APEX, PHONE_ZONE } from './helpers/network.js';
import { startUnbound, type RunningUnbound } from './helpers/unbound.js';

// Design §5 for a sub-delegation: a stock validating Unbound, trusting only the root's DS,
// validates the chain root → +44 → +447 (the DS of +447 comes from the +44 DP), and refuses a
// sub-delegation whose DS matches no key of the child.

function onPath(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
}

const hasUnbound = onPath('unbound');
const hasDelv = onPath('delv');
if (!hasUnbound) {
  console.warn('unbound not installed (Debian package unbound): skipping the +447 chain checks');
} else if (!hasDelv) {
  console.warn('delv not installed (Debian package bind9-dnsutils): skipping its +447 check');
}

/** The range `+448`, sub-delegated by the +44 DP with a DS that matches no key of its own. */
const BROKEN_ZONE = `8.${PHONE_ZONE}`;
const SUB_CSI = parseCsi('tel:+447700900123');
const SUB_UNKNOWN = parseCsi('tel:+447700900999');
const BROKEN_CSI = parseCsi('tel:+448081570001');

let h: Hierarchy;
let unbound: RunningUnbound | undefined;
let bindAnchors: string;

function ask(name: string, type: 'DS' | 'MAP'): Promise<Message> {
  const query = buildQuery(name, type, { dnssecOk: true, recursionDesired: true });
  return queryUdp({ host: '127.0.0.1', port: unbound?.port ?? 0 }, query, { timeoutMs: 5000 });
}

beforeAll(async () => {
  if (!hasUnbound) return;
  h = await buildHierarchy();
  const alice = keyPairFromSeed(new Uint8Array(32).fill(0x61));
  await h.publish(SUB_CSI, alice);
  const broken = await h.addServer({
    zone: BROKEN_ZONE,
    parent: h.phone,
    ds: [unrelatedDs(BROKEN_ZONE)],
  });
  await h.publish(BROKEN_CSI, alice);
  const anchorFile = join(h.dir, 'mimi.arpa.anchor');
  writeFileSync(anchorFile, h.trustAnchor);
  bindAnchors = join(h.dir, 'mimi.arpa.bind-anchors');
  writeFileSync(
    bindAnchors,
    formatBindTrustAnchors({ ...rootTrustAnchor(h.root.store, APEX), dnskeys: [] }),
  );
  unbound = await startUnbound({
    dir: h.dir,
    trustAnchorFile: anchorFile,
    stubs: [
      { zone: APEX, port: h.root.udp.port },
      { zone: PHONE_ZONE, port: h.phone.udp.port },
      { zone: SUB_ZONE, port: h.sub.udp.port },
      { zone: BROKEN_ZONE, port: broken.udp.port },
    ],
  });
});

afterAll(async () => {
  await unbound?.stop();
  await h?.close();
});

describe('a stock validating Unbound through the sub-delegated +447 DP', () => {
  it.skipIf(!hasUnbound)('validates the DS of +447 served by the +44 DP', async () => {
    const response = await ask(SUB_ZONE, 'DS');
    expect(response.rcode, unbound?.log()).toBe('NOERROR');
    expect(response.flags.ad, unbound?.log()).toBe(true);
    expect(response.answers.some((rr) => rr.type === 'DS')).toBe(true);
  });

  it.skipIf(!hasUnbound)('validates a +447 mapping: NOERROR with the AD flag', async () => {
    const response = await ask(csiToName(SUB_CSI), 'MAP');
    expect(response.rcode, unbound?.log()).toBe('NOERROR');
    expect(response.flags.ad, unbound?.log()).toBe(true);
    expect(response.answers.filter((rr) => rr.type === 'MAP')).toHaveLength(1);
  });

  it.skipIf(!hasUnbound)('validates the compact denial of an unknown +447 CSI', async () => {
    const response = await ask(csiToName(SUB_UNKNOWN), 'MAP');
    expect(response.rcode, unbound?.log()).toBe('NOERROR');
    expect(response.flags.ad, unbound?.log()).toBe(true);
    expect(response.answers).toEqual([]);
  });

  it.skipIf(!hasUnbound)(
    'answers SERVFAIL below a sub-delegation whose DS matches no key',
    async () => {
      const response = await ask(csiToName(BROKEN_CSI), 'MAP');
      expect(response.rcode, unbound?.log()).toBe('SERVFAIL');
      expect(response.answers).toEqual([]);
      expect(unbound?.log()).toMatch(
        /validation failure <1\.0\.0\.0\.7\.5\.1\.8\.0\.8\.4\.4\.e164/,
      );
      expect(unbound?.log()).toMatch(/while building chain of trust/);
    },
  );

  it.skipIf(!hasUnbound || !hasDelv)(
    'delv validates the +447 mapping from the root trust anchor: "fully validated"',
    async () => {
      const output = await new Promise<string>((resolve, reject) => {
        const child = spawn(
          'delv',
          [
            '@127.0.0.1',
            '-p',
            String(unbound?.port),
            '-a',
            bindAnchors,
            `+root=${APEX}`,
            csiToName(SUB_CSI),
            'TYPE65400',
          ],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        );
        let text = '';
        child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
        child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
        const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        child.once('error', reject);
        child.once('close', () => {
          clearTimeout(timer);
          resolve(text);
        });
      });
      expect(output, unbound?.log()).toContain('; fully validated');
      expect(output).toMatch(/\sIN RRSIG TYPE65400 15 /);
    },
  );
});
