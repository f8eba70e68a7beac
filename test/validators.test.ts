import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildQuery,
  csiToName,
  formatBindTrustAnchors,
  formatTrustAnchor,
  keyPairFromSeed,
  parseCsi,
  queryUdp,
  silentLogger,
  type Csi,
} from '@mimi-discovery/common';
import { exportZone } from '@mimi-discovery/authoritative';
import {
  createResolver,
  startResolverServer,
  type Resolver,
  type RunningResolverServer,
} from '@mimi-discovery/resolver';
import { EMAIL_ZONE, PHONE_ZONE, buildNetwork, type Network } from './helpers/network.js';
import { missingTools, runTool } from './helpers/tools.js';
import { apiOf, attestAndPublish } from './helpers/registration.js';
import { startUnbound, type RunningUnbound } from './helpers/unbound.js';

// Design §5: independent validators must accept our chain. ldns checks each zone as exported
// for stock secondaries; Unbound resolves through our root and DPs and validates from our trust
// anchor; BIND's delv validates again, on its own, through that Unbound and through our own
// resolver's DNS port.

const TOOLS = {
  'ldns-verify-zone': 'ldnsutils',
  unbound: 'unbound',
  delv: 'bind9-dnsutils',
  dig: 'bind9-dnsutils',
} as const;
const missing = missingTools(TOOLS);

const ALICE = keyPairFromSeed(new Uint8Array(32).fill(0x21));
const PHONE = parseCsi('tel:+442079460018');
const EMAIL = parseCsi('mailto:alice@example.com');
const UNKNOWN_PHONE = parseCsi('tel:+442079460999');
const UNKNOWN_EMAIL = parseCsi('mailto:nobody@example.com');

let net: Network;
let unbound: RunningUnbound | undefined;
let ours: { resolver: Resolver; server: RunningResolverServer } | undefined;
let bindAnchors: string;
let wrongAnchors: string;

beforeAll(async () => {
  net = await buildNetwork();
  for (const [csi, dp] of [
    [PHONE, net.phone],
    [EMAIL, net.email],
  ] as const) {
    const { response } = await attestAndPublish(apiOf(dp), csi, ALICE);
    expect(response.status, JSON.stringify(response.body)).toBe(201);
  }
  const anchorFile = join(net.dir, 'mimi.arpa.ds');
  writeFileSync(anchorFile, formatTrustAnchor({ ...net.trustAnchor, dnskeys: [] }));
  bindAnchors = join(net.dir, 'mimi.arpa.bind-anchors');
  writeFileSync(bindAnchors, formatBindTrustAnchors({ ...net.trustAnchor, dnskeys: [] }));
  // The same DS with one digest bit flipped: the control that shows delv checks the anchor.
  const [ds] = net.trustAnchor.ds;
  if (ds === undefined) throw new Error('the trust anchor holds no DS');
  const digest = Uint8Array.from(ds.digest);
  digest[0] = (digest[0] ?? 0) ^ 1;
  wrongAnchors = join(net.dir, 'wrong.bind-anchors');
  writeFileSync(
    wrongAnchors,
    formatBindTrustAnchors({ zone: net.apex, ds: [{ ...ds, digest }], dnskeys: [] }),
  );
  if (!missing.has('unbound')) {
    unbound = await startUnbound({
      dir: net.dir,
      trustAnchorFile: anchorFile,
      stubs: [
        { zone: net.apex, port: net.root.udp.port },
        { zone: PHONE_ZONE, port: net.phone.udp.port },
        { zone: EMAIL_ZONE, port: net.email.udp.port },
      ],
    });
  }
});

afterAll(async () => {
  await ours?.server.close();
  await ours?.resolver.close();
  await unbound?.stop();
  await net?.close();
});

describe('ldns-verify-zone on each zone exported with NSEC3', () => {
  it.skipIf(missing.has('ldns-verify-zone')).each([
    ['the root zone', 'mimi.arpa'],
    ['the +44 zone', PHONE_ZONE],
    ['the example.com zone', EMAIL_ZONE],
  ])('verifies %s', async (_label, zone) => {
    const server = zone === net.apex ? net.root : zone === PHONE_ZONE ? net.phone : net.email;
    const file = join(net.dir, `${zone}.zone`);
    writeFileSync(file, exportZone(server.provider.store, zone, { nsec3: true }));
    const { status, output } = await runTool('ldns-verify-zone', [file]);
    expect(output).toContain('Zone is verified and complete');
    expect(status, output).toBe(0);
  });
});

describe('a stock validating Unbound, with our trust anchor', () => {
  const dig = (name: string, type: string): Promise<{ status: number | null; output: string }> =>
    runTool('dig', [
      `@127.0.0.1`,
      '-p',
      String(unbound?.port),
      '+dnssec',
      '+tries=1',
      '+time=5',
      name,
      type,
    ]);

  it.skipIf(missing.has('unbound'))('validates a mapping: NOERROR with the AD flag', async () => {
    for (const csi of [PHONE, EMAIL]) {
      const query = buildQuery(csiToName(csi), 'MAP', { dnssecOk: true, recursionDesired: true });
      const response = await queryUdp({ host: '127.0.0.1', port: unbound?.port ?? 0 }, query);
      expect(response.rcode, unbound?.log()).toBe('NOERROR');
      expect(response.flags.ad, unbound?.log()).toBe(true);
      expect(response.answers.filter((rr) => rr.type === 'MAP')).toHaveLength(1);
    }
  });

  it.skipIf(missing.has('unbound'))('validates a compact denial: AD set, no MAP', async () => {
    for (const csi of [UNKNOWN_PHONE, UNKNOWN_EMAIL]) {
      const query = buildQuery(csiToName(csi), 'MAP', { dnssecOk: true, recursionDesired: true });
      const response = await queryUdp({ host: '127.0.0.1', port: unbound?.port ?? 0 }, query);
      expect(response.rcode, unbound?.log()).toBe('NOERROR');
      expect(response.flags.ad, unbound?.log()).toBe(true);
      expect(response.answers).toEqual([]);
    }
    expect(unbound?.log()).not.toMatch(/validation failure|bogus/i);
  });

  it.skipIf(missing.has('unbound') || missing.has('dig'))(
    'dig +dnssec shows the ad flag',
    async () => {
      const { output } = await dig(csiToName(PHONE), 'TYPE65400');
      expect(output, unbound?.log()).toMatch(/;; flags: [a-z ]*\bad\b/);
      expect(output).toContain('status: NOERROR');
    },
  );

  it.skipIf(missing.has('unbound') || missing.has('delv'))(
    'delv validates each mapping from the trust anchor: "fully validated"',
    async () => {
      for (const csi of [PHONE, EMAIL]) {
        const { output } = await runTool('delv', [
          '@127.0.0.1',
          '-p',
          String(unbound?.port),
          '-a',
          bindAnchors,
          `+root=${net.apex}`,
          csiToName(csi),
          'TYPE65400',
        ]);
        expect(output, unbound?.log()).toContain('; fully validated');
        expect(output).toMatch(/\sIN TYPE65400 \\# \d+ /);
        expect(output).toMatch(/\sIN RRSIG TYPE65400 15 /);
      }
    },
  );

  it.skipIf(missing.has('unbound') || missing.has('delv'))(
    'delv validates the denial of an unknown CSI',
    async () => {
      for (const csi of [UNKNOWN_PHONE, UNKNOWN_EMAIL]) {
        const { output } = await runTool('delv', [
          '@127.0.0.1',
          '-p',
          String(unbound?.port),
          '-a',
          bindAnchors,
          `+root=${net.apex}`,
          csiToName(csi),
          'TYPE65400',
        ]);
        // delv 9.18 reports a validated NODATA this way, the NSEC (with NXNAME) beside it.
        expect(output, unbound?.log()).toContain('; negative response, fully validated');
        expect(output).toContain(`; ${csiToName(csi)}.`);
        expect(output).toMatch(/\\-TYPE65400 ;-\$NXRRSET/);
      }
    },
  );

  it.skipIf(missing.has('unbound') || missing.has('delv'))(
    'delv with another trust anchor does not validate the same answer',
    async () => {
      const { output } = await runTool('delv', [
        '@127.0.0.1',
        '-p',
        String(unbound?.port),
        '-a',
        wrongAnchors,
        `+root=${net.apex}`,
        csiToName(PHONE),
        'TYPE65400',
      ]);
      expect(output).not.toContain('fully validated');
      expect(output).toContain('resolution failed: broken trust chain');
    },
  );
});

describe('BIND delv through our resolver', () => {
  /** delv, validating on its own from the trust anchor, asking our resolver's UDP port. */
  const delv = async (csi: Csi): Promise<string> => {
    if (ours === undefined) {
      const resolver = createResolver(
        {
          rootServers: [
            { name: `ns1.${net.apex}`, addresses: ['127.0.0.1'], doh: net.root.dohUrl },
          ],
          trustAnchor: net.trustAnchor,
          ca: net.caPem,
        },
        { log: silentLogger },
      );
      const server = await startResolverServer({ listen: { udp: 0, tcp: 0 } }, resolver, {
        log: silentLogger,
      });
      ours = { resolver, server };
    }
    const { output } = await runTool('delv', [
      '@127.0.0.1',
      '-p',
      String(ours.server.dns?.udp?.port),
      '-a',
      bindAnchors,
      `+root=${net.apex}`,
      csiToName(csi),
      'TYPE65400',
    ]);
    return output;
  };

  it.skipIf(missing.has('delv'))('validates each mapping: "fully validated"', async () => {
    for (const csi of [PHONE, EMAIL]) {
      const output = await delv(csi);
      expect(output).toContain('; fully validated');
      expect(output).toMatch(/\sIN TYPE65400 \\# \d+ /);
      expect(output).toMatch(/\sIN RRSIG TYPE65400 15 /);
    }
  });

  it.skipIf(missing.has('delv'))(
    'validates the compact denial of an unknown CSI: "negative response, fully validated"',
    async () => {
      // The DP's denial, passed on with the NOERROR it was signed for (RFC 9824 §5): rewritten
      // to NXDOMAIN, delv took its NSEC as proof that the name exists and failed the chain.
      for (const csi of [UNKNOWN_PHONE, UNKNOWN_EMAIL]) {
        const output = await delv(csi);
        expect(output).toContain('; negative response, fully validated');
        expect(output).not.toContain('broken trust chain');
        expect(output).toMatch(/\\-TYPE65400 ;-\$NXRRSET/);
      }
    },
  );
});
