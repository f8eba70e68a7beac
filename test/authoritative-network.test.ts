import { connect as connectTls } from 'node:tls';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DNSSEC_ALGORITHM_ED25519,
  DNS_MESSAGE_MEDIA_TYPE,
  NXNAME_TYPE,
  buildQuery,
  createRemoval,
  csiToName,
  decodeMapping,
  decodeMessage,
  encodeMessage,
  encodeRemoval,
  keyPairFromSeed,
  parseCsi,
  verifyRRset,
  type Csi,
  type DnskeyData,
  type DsData,
  type Message,
  type MspEntry,
} from '@mimi-discovery/common';
import {
  EMAIL_ZONE,
  PHONE_ZONE,
  buildNetwork,
  logLines,
  type Network,
  type NetworkServer,
} from './helpers/network.js';
import {
  TRANSPORTS,
  ask,
  expectSigned,
  rrset,
  rrsigsOf,
  trustedDnskeys,
  type Transport,
} from './helpers/dns.js';
import {
  answerOf,
  apiOf,
  attest,
  attestAs,
  errorCode,
  mappingBytes,
  mappingOf,
  nowSeconds,
  removeMapping,
  revoke,
  type ApiResponse,
  type HeldAttestation,
} from './helpers/registration.js';

// The issue "Authoritative DPs and the root directory", seen from outside: a recipient registers
// through the API of its DP, the root refers every CSI name to that DP, the DP answers with the
// signed mapping, and the whole DNSSEC chain from the root's trust anchor holds, over every
// transport. Then the requirements of design §1 that the authoritative side meets.

const seed = (byte: number): Uint8Array => new Uint8Array(32).fill(byte);
const ALICE = keyPairFromSeed(seed(0x11));
const BOB = keyPairFromSeed(seed(0x12));
const MALLORY = keyPairFromSeed(seed(0x13));
/** A prover that no zone lists. */
const ROGUE_PROVER = keyPairFromSeed(seed(0x14));
/** The CSI provider of +44 (e.g. the carrier that recycles numbers). */
const CSIP = keyPairFromSeed(seed(0x15));

const PHONE = parseCsi('tel:+442079460018');
const EMAIL = parseCsi('mailto:alice@example.com');
/** Never published anywhere. */
const UNKNOWN_PHONE = parseCsi('tel:+442079460999');
const UNKNOWN_EMAIL = parseCsi('mailto:nobody@example.com');

const PHONE_MSPS: readonly MspEntry[] = [
  { provider: 'chat.example', tags: ['mls', 'primary'] },
  { provider: 'msg.example', tags: [], uri: 'im:alice@msg.example' },
];

let net: Network;
const published = new Map<Csi, { response: ApiResponse; bytes: Uint8Array }>();
/** Every CSI the tests registered or asked about. */
const used = new Set<Csi>([UNKNOWN_PHONE, UNKNOWN_EMAIL]);

/** The DP that serves a CSI's range. */
const dpOf = (csi: Csi): NetworkServer => (csi.startsWith('tel:') ? net.phone : net.email);

/** Attests `csi` for `recipient` through the DP's API and publishes a mapping. */
async function register(
  csi: Csi,
  recipient = ALICE,
  content: Parameters<typeof mappingBytes>[2] = {},
): Promise<{ response: ApiResponse; bytes: Uint8Array; att: HeldAttestation }> {
  used.add(csi);
  const dp = dpOf(csi);
  const att = await attest(apiOf(dp), csi, recipient);
  const bytes = mappingBytes(att, recipient, content);
  const response = await answerOf(apiOf(dp).client.publishMapping({ csi, mapping: bytes }));
  return { response, bytes, att };
}

/** The MAP question for a CSI at its DP, with DO. */
function askDp(csi: Csi, transport: Transport = 'doh-post', co = false): Promise<Message> {
  used.add(csi);
  return ask(net.doh, dpOf(csi), transport, csiToName(csi), 'MAP', co ? { compactOk: true } : {});
}

/** The MAP RDATA in an answer section, as sorted hex strings. */
const mapData = (response: Message, csi: Csi): string[] =>
  rrset(response.answers, csiToName(csi), 'MAP')
    .map((rr) => Buffer.from(rr.data).toString('hex'))
    .sort();

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/**
 * The DP's DNSKEYs as a validator comes to trust them: the root's DNSKEY from the trust anchor,
 * the DS of the DP's zone from the root's referral (signed by the root key), the DP's DNSKEY
 * from that DS.
 */
async function chainToDp(csi: Csi): Promise<{ zone: string; keys: DnskeyData[] }> {
  const dp = dpOf(csi);
  const rootKeys = await trustedDnskeys(net.doh, net.root, net.apex, net.trustAnchor.ds);
  const referral = await ask(net.doh, net.root, 'doh-post', csiToName(csi), 'MAP');
  expectSigned(referral.authorities, dp.zone, 'DS', net.apex, rootKeys);
  const ds: DsData[] = rrset(referral.authorities, dp.zone, 'DS').map((rr) => rr.data);
  return { zone: dp.zone, keys: await trustedDnskeys(net.doh, dp, dp.zone, ds) };
}

/** Asserts a compact denial (RFC 9824) of `csi`'s name, every signature verifying with `keys`. */
function expectCompactDenial(response: Message, csi: Csi, zone: string, keys: DnskeyData[]) {
  const name = csiToName(csi);
  expect(response.flags.aa).toBe(true);
  expect(response.answers).toEqual([]);
  expectSigned(response.authorities, zone, 'SOA', zone, keys);
  expectSigned(response.authorities, name, 'NSEC', zone, keys);
  const [nsec] = rrset(response.authorities, name, 'NSEC');
  expect(nsec?.data.nextName).toBe(`\\000.${name}`);
  expect(nsec?.data.types).toEqual(['RRSIG', 'NSEC', `TYPE${NXNAME_TYPE}`]);
}

beforeAll(async () => {
  net = await buildNetwork();
  published.set(PHONE, await register(PHONE, ALICE, { msps: PHONE_MSPS }));
  published.set(EMAIL, await register(EMAIL));
});

afterAll(async () => {
  await net?.close();
});

describe('registration through the API', () => {
  it('publishes a phone mapping at the +44 DP and an email mapping at the example.com DP', async () => {
    for (const [csi, zone] of [
      [PHONE, PHONE_ZONE],
      [EMAIL, EMAIL_ZONE],
    ] as const) {
      const { response } = published.get(csi) ?? expect.unreachable();
      expect(response.status, JSON.stringify(response.body)).toBe(201);
      expect(response.body).toMatchObject({ zone, name: csiToName(csi) });
      const { serial } = response.body as { serial: number };
      expect(serial).toBeGreaterThan(1);
      // The serial the API reports is served (or passed) by the zone's SOA.
      const soa = await ask(net.doh, dpOf(csi), 'udp', zone, 'SOA');
      const [record] = rrset(soa.answers, zone, 'SOA');
      expect(record?.data.serial).toBeGreaterThanOrEqual(serial);
    }
  });

  it('publishing the same mapping again succeeds without a change (a client may retry)', async () => {
    const { bytes } = published.get(EMAIL) ?? expect.unreachable();
    const before = net.email.provider.store.zoneInfo(EMAIL_ZONE)?.serial;
    const again = await answerOf(
      apiOf(net.email).client.publishMapping({ csi: EMAIL, mapping: bytes }),
    );
    expect(again.status).toBe(201);
    expect(again.body).toMatchObject({ serial: before });
    expect(net.email.provider.store.zoneInfo(EMAIL_ZONE)?.serial).toBe(before);
  });
});

describe.each(TRANSPORTS)('answers over %s', (transport) => {
  it('the root refers each CSI name to its DP: NS, signed DS, glue and the DoH endpoint', async () => {
    for (const csi of [PHONE, EMAIL]) {
      const dp = dpOf(csi);
      const response = await ask(net.doh, net.root, transport, csiToName(csi), 'MAP');
      expect(response.rcode).toBe('NOERROR');
      expect(response.flags.aa, 'a referral is not authoritative').toBe(false);
      expect(response.answers).toEqual([]);
      const ns = `ns1.${dp.zone}`;
      expect(rrset(response.authorities, dp.zone, 'NS').map((rr) => rr.data)).toEqual([ns]);
      expect(rrset(response.authorities, dp.zone, 'DS')).toHaveLength(1);
      expect(rrsigsOf(response.authorities, dp.zone, 'DS')).toHaveLength(1);
      expect(rrset(response.additionals, ns, 'A').map((rr) => rr.data)).toEqual(['127.0.0.1']);
      const [svcb] = rrset(response.additionals, `_dns.${ns}`, 'SVCB');
      expect(svcb?.data.target).toBe(ns);
      expect(svcb?.data.params.port).toBe(dp.dohPort);
      expect(svcb?.data.params.alpn).toContain('h2');
      expect(svcb?.data.params.dohpath).toBe('/dns-query{?dns}');
    }
  });

  it('each DP answers with the signed mapping it published', async () => {
    for (const csi of [PHONE, EMAIL]) {
      const dp = dpOf(csi);
      const response = await askDp(csi, transport);
      expect(response.rcode).toBe('NOERROR');
      expect(response.flags.aa).toBe(true);
      expect(mapData(response, csi)).toEqual([hex(published.get(csi)?.bytes ?? new Uint8Array())]);
      const keys = rrset(
        (await ask(net.doh, dp, transport, dp.zone, 'DNSKEY')).answers,
        dp.zone,
        'DNSKEY',
      ).map((rr) => rr.data);
      expectSigned(response.answers, csiToName(csi), 'MAP', dp.zone, keys);
    }
  });

  it('an unknown CSI gets a compact denial: NOERROR, SOA and an NXNAME NSEC, all signed', async () => {
    for (const csi of [UNKNOWN_PHONE, UNKNOWN_EMAIL]) {
      const dp = dpOf(csi);
      const keys = rrset(
        (await ask(net.doh, dp, transport, dp.zone, 'DNSKEY')).answers,
        dp.zone,
        'DNSKEY',
      ).map((rr) => rr.data);
      const response = await askDp(csi, transport);
      expect(response.rcode).toBe('NOERROR');
      expectCompactDenial(response, csi, dp.zone, keys);
    }
  });

  it('with the CO flag, the same denial comes with NXDOMAIN', async () => {
    const response = await askDp(UNKNOWN_PHONE, transport, true);
    expect(response.rcode).toBe('NXDOMAIN');
    expect(response.edns?.compactOk).toBe(true);
    expect(rrset(response.authorities, csiToName(UNKNOWN_PHONE), 'NSEC')).toHaveLength(1);
  });
});

describe('the DNSSEC chain', () => {
  it('verifies from the trust anchor: root DNSKEY → signed DS in the referral → DP DNSKEY → MAP', async () => {
    for (const csi of [PHONE, EMAIL]) {
      const { zone, keys } = await chainToDp(csi);
      const response = await askDp(csi);
      expectSigned(response.answers, csiToName(csi), 'MAP', zone, keys);
    }
  });

  it('verifies a compact denial with the DP key the chain leads to', async () => {
    for (const csi of [UNKNOWN_PHONE, UNKNOWN_EMAIL]) {
      const { zone, keys } = await chainToDp(csi);
      expectCompactDenial(await askDp(csi), csi, zone, keys);
    }
  });

  it('does not verify a DP answer with the root key: each zone signs with its own', async () => {
    const rootKeys = rrset(
      (await ask(net.doh, net.root, 'doh-post', net.apex, 'DNSKEY')).answers,
      net.apex,
      'DNSKEY',
    ).map((rr) => rr.data);
    const answer = await askDp(PHONE);
    const [sig] = rrsigsOf(answer.answers, csiToName(PHONE), 'MAP');
    const records = rrset(answer.answers, csiToName(PHONE), 'MAP');
    expect(verifyRRset(records, sig ?? expect.unreachable(), rootKeys, nowSeconds())).toEqual({
      kind: 'failed',
      reason: 'no-key',
    });
  });
});

describe('requirements seen from outside (design §1)', () => {
  it('R1: a mapping attested by a key that is no AUTHKEY prover of the range is refused, and never served', async () => {
    const csi = parseCsi('tel:+442079460101');
    const att = attestAs(ROGUE_PROVER, csi, ALICE);
    const response = await answerOf(apiOf(net.phone).client.publishMapping(mappingOf(att, ALICE)));
    expect(response.status).toBe(403);
    expect(errorCode(response)).toBe('ERR_PROVER_NOT_AUTHORIZED');
    const { zone, keys } = await chainToDp(csi);
    expectCompactDenial(await askDp(csi), csi, zone, keys);
  });

  it('R1: an attestation by the prover of another range is refused', async () => {
    // The example.com DP's prover attests a phone number: valid signature, wrong range.
    const csi = parseCsi('tel:+442079460107');
    const emailProver = net.email.provider.store.proverKey();
    const att = attestAs(emailProver, csi, ALICE);
    const response = await answerOf(apiOf(net.phone).client.publishMapping(mappingOf(att, ALICE)));
    expect(response.status).toBe(403);
    expect(errorCode(response)).toBe('ERR_PROVER_NOT_AUTHORIZED');
    expect(mapData(await askDp(csi), csi)).toEqual([]);
  });

  it('R2: the tags of every MSP come back in the MAP answer', async () => {
    const csi = parseCsi('mailto:tags@example.com');
    const msps: MspEntry[] = [
      { provider: 'chat.example', tags: ['mls', 'business', 'primary'] },
      { provider: 'msg.example', tags: ['sms-fallback'], uri: 'im:tags@msg.example' },
    ];
    const { response } = await register(csi, ALICE, { msps });
    expect(response.status).toBe(201);
    const answer = await askDp(csi);
    const [map] = rrset(answer.answers, csiToName(csi), 'MAP');
    expect(decodeMapping(map?.data ?? expect.unreachable()).msps).toEqual(msps);
  });

  describe('R5: zero, empty, one and many mappings', () => {
    it('zero: a CSI without mappings gets an authenticated denial', async () => {
      const { zone, keys } = await chainToDp(UNKNOWN_EMAIL);
      const response = await askDp(UNKNOWN_EMAIL);
      expect(response.rcode).toBe('NOERROR');
      expectCompactDenial(response, UNKNOWN_EMAIL, zone, keys);
    });

    it('empty: a mapping that lists no MSP is served (the recipient opted out)', async () => {
      const csi = parseCsi('tel:+442079460102');
      const { response, bytes } = await register(csi, ALICE, { msps: [] });
      expect(response.status).toBe(201);
      const answer = await askDp(csi);
      expect(mapData(answer, csi)).toEqual([hex(bytes)]);
      const [map] = rrset(answer.answers, csiToName(csi), 'MAP');
      expect(decodeMapping(map?.data ?? expect.unreachable()).msps).toEqual([]);
    });

    it('one: one key, one MAP record', async () => {
      const answer = await askDp(EMAIL);
      expect(mapData(answer, EMAIL)).toEqual([
        hex(published.get(EMAIL)?.bytes ?? expect.unreachable()),
      ]);
    });

    it('many: two recipient keys for one CSI give two MAP records, both signed', async () => {
      const csi = parseCsi('mailto:many@example.com');
      const first = await register(csi, ALICE);
      const second = await register(csi, BOB, {
        msps: [{ provider: 'other.example', tags: ['mls'] }],
      });
      expect([first.response.status, second.response.status]).toEqual([201, 201]);
      const { zone, keys } = await chainToDp(csi);
      const answer = await askDp(csi);
      expect(mapData(answer, csi)).toEqual([hex(first.bytes), hex(second.bytes)].sort());
      expectSigned(answer.answers, csiToName(csi), 'MAP', zone, keys);
    });

    it('many: concurrent publishes by eight keys for one CSI all land, none overwriting another', async () => {
      const csi = parseCsi('tel:+442079460108');
      const recipients = [0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68].map((b) =>
        keyPairFromSeed(seed(b)),
      );
      used.add(csi);
      const mappings: Uint8Array[] = [];
      for (const recipient of recipients) {
        const att = await attest(apiOf(net.phone), csi, recipient);
        mappings.push(mappingBytes(att, recipient));
      }
      const responses = await Promise.all(
        mappings.map((bytes) =>
          answerOf(apiOf(net.phone).client.publishMapping({ csi, mapping: bytes })),
        ),
      );
      expect(responses.map((r) => r.status)).toEqual(mappings.map(() => 201));
      const answer = await askDp(csi, 'tcp');
      expect(mapData(answer, csi)).toEqual(mappings.map(hex).sort());
    });

    it('many: an RRset too large for a UDP answer is truncated there and whole over TCP', async () => {
      const csi = parseCsi('mailto:crowd@example.com');
      const recipients = [0x51, 0x52, 0x53, 0x54].map((b) => keyPairFromSeed(seed(b)));
      const all: string[] = [];
      for (const recipient of recipients) {
        const { response, bytes } = await register(csi, recipient);
        expect(response.status).toBe(201);
        all.push(hex(bytes));
      }
      // Four mappings of ~420 octets are more than the 1232 octets a UDP answer may carry.
      const udp = await askDp(csi, 'udp');
      expect(udp.flags.tc).toBe(true);
      expect(udp.answers).toEqual([]);
      for (const transport of ['tcp', 'doh-post'] as const) {
        const whole = await askDp(csi, transport);
        expect(whole.flags.tc, transport).toBe(false);
        expect(mapData(whole, csi), transport).toEqual(all.sort());
      }
    });
  });

  describe('R7: everything but plain DNS is encrypted', () => {
    const plainHttp = async (port: number, path: string): Promise<unknown> => {
      const agent = new Agent();
      try {
        const response = await request(`http://127.0.0.1:${port}${path}`, {
          dispatcher: agent,
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{}',
          headersTimeout: 5000,
          bodyTimeout: 5000,
        });
        return { status: response.statusCode, body: await response.body.text() };
      } catch (error) {
        return error;
      } finally {
        await agent.destroy();
      }
    };

    it('the DoH and registration API ports do not speak plain HTTP', async () => {
      for (const server of [net.root, net.phone, net.email]) {
        const result = await plainHttp(server.dohPort, '/dns-query');
        // No HTTP response at all: the TLS server drops what is not a handshake.
        expect(result, `DoH of ${server.zone}`).toMatchObject({ code: 'UND_ERR_SOCKET' });
      }
      for (const dp of [net.phone, net.email]) {
        const port = Number(new URL(dp.api?.url ?? expect.unreachable()).port);
        const result = await plainHttp(port, '/v1/prove');
        expect(result, `API of ${dp.zone}`).toMatchObject({ code: 'UND_ERR_SOCKET' });
      }
    });

    it('they speak TLS 1.2 or later with a certificate for 127.0.0.1, which a client without the CA refuses', async () => {
      const ports = [
        ...[net.root, net.phone, net.email].map((s) => s.dohPort),
        ...[net.phone, net.email].map((s) => Number(new URL(s.api?.url ?? '').port)),
      ];
      for (const port of ports) {
        const trusted = await new Promise<{ protocol: string | null; authorized: boolean }>(
          (resolve, reject) => {
            const socket = connectTls({ host: '127.0.0.1', port, ca: net.caPem }, () => {
              resolve({ protocol: socket.getProtocol(), authorized: socket.authorized });
              socket.destroy();
            });
            socket.once('error', reject);
          },
        );
        expect(trusted.authorized).toBe(true);
        expect(['TLSv1.2', 'TLSv1.3']).toContain(trusted.protocol);
        const untrusted = await new Promise<Error | undefined>((resolve) => {
          const socket = connectTls({ host: '127.0.0.1', port }, () => {
            socket.destroy();
            resolve(undefined);
          });
          socket.once('error', resolve);
        });
        expect(untrusted, `port ${port} without the CA`).toMatchObject({
          code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
        });
      }
    });
  });

  it('R9: an HTTP cache may keep a DoH answer no longer than the TTL of the mapping', async () => {
    const query = encodeMessage({ ...buildQuery(csiToName(PHONE), 'MAP'), id: 0 });
    const response = await request(
      `${net.phone.dohUrl}?dns=${Buffer.from(query).toString('base64url')}`,
      { dispatcher: net.agent, headers: { accept: DNS_MESSAGE_MEDIA_TYPE } },
    );
    const answer = decodeMessage(new Uint8Array(await response.body.arrayBuffer()));
    const [map] = rrset(answer.answers, csiToName(PHONE), 'MAP');
    expect(map?.ttl).toBeGreaterThan(0);
    expect(map?.ttl).toBeLessThanOrEqual(300);
    expect(response.headers['cache-control']).toBe(`max-age=${map?.ttl}`);
  });

  it('R9: a removal by the recipient deletes the MAP; the name is then denied', async () => {
    const csi = parseCsi('tel:+442079460104');
    const { response } = await register(csi);
    expect(response.status).toBe(201);
    expect(mapData(await askDp(csi), csi)).toHaveLength(1);
    const removed = await removeMapping(apiOf(net.phone).client, csi, ALICE, 1);
    expect(removed.status, JSON.stringify(removed.body)).toBe(200);
    const { zone, keys } = await chainToDp(csi);
    for (const transport of TRANSPORTS) {
      expectCompactDenial(await askDp(csi, transport), csi, zone, keys);
    }
  });

  describe('R10: only the recipient or the CSIP removes', () => {
    it('a removal by another key, or forged for the recipient key, is refused and the MAP stays', async () => {
      const csi = parseCsi('tel:+442079460105');
      const { response, bytes } = await register(csi);
      expect(response.status).toBe(201);

      // Mallory removes "her" mapping of the CSI: she has none.
      const own = await removeMapping(apiOf(net.phone).client, csi, MALLORY, 99);
      expect(own.status).toBe(404);
      expect(errorCode(own)).toBe('ERR_NOT_FOUND');

      // Mallory signs a removal that names Alice's key.
      const signed = createRemoval({ csi, seq: 99, iat: nowSeconds() }, MALLORY.secretKey);
      const forged = await answerOf(
        apiOf(net.phone).client.remove(encodeRemoval({ ...signed, key: ALICE.publicKey })),
      );
      expect(forged.status).toBe(400);
      expect(errorCode(forged)).toBe('ERR_REMOVAL_INVALID');

      // Mallory revokes as if she were the CSIP.
      const revoked = await revoke(apiOf(net.phone).client, csi, MALLORY, nowSeconds());
      expect(revoked.status).toBe(403);
      expect(errorCode(revoked)).toBe('ERR_CSIP_NOT_AUTHORIZED');

      expect(mapData(await askDp(csi), csi)).toEqual([hex(bytes)]);
    });

    it('a revocation by a CSIP listed at the apex removes every mapping it covers', async () => {
      const csi = parseCsi('tel:+442079460106');
      const store = net.phone.provider.store;
      const apex = PHONE_ZONE;
      // Added to the apex AUTHKEYs inside the store's write transaction, as `zone import` does.
      const added = await store.applyOperation(apex, {
        kind: 'add-authkeys',
        keys: [
          {
            role: 'csip',
            algorithm: DNSSEC_ALGORITHM_ED25519,
            notAfter: nowSeconds() + 365 * 86_400,
            publicKey: CSIP.publicKey,
          },
        ],
      });
      expect(added).toMatchObject({ kind: 'applied', changed: true });
      // The CSIP key is now published, signed, at the apex.
      const { keys } = await chainToDp(csi);
      const authkeys = await ask(net.doh, net.phone, 'doh-post', apex, 'AUTHKEY');
      expectSigned(authkeys.answers, apex, 'AUTHKEY', apex, keys);
      expect(
        rrset(authkeys.answers, apex, 'AUTHKEY').some(
          (rr) => rr.data.role === 'csip' && hex(rr.data.publicKey) === hex(CSIP.publicKey),
        ),
      ).toBe(true);

      const first = await register(csi, ALICE);
      const second = await register(csi, BOB);
      expect([first.response.status, second.response.status]).toEqual([201, 201]);
      expect(mapData(await askDp(csi), csi)).toHaveLength(2);

      // Attestations carry nbf = the second they were issued: "before" one second later covers both.
      const response = await revoke(apiOf(net.phone).client, csi, CSIP, nowSeconds() + 1);
      expect(response.status, JSON.stringify(response.body)).toBe(200);
      expect(response.body).toMatchObject({ removed: 2 });
      expectCompactDenial(await askDp(csi), csi, apex, keys);
      // An unrelated CSI of the same range keeps its mapping.
      expect(mapData(await askDp(PHONE), PHONE)).toHaveLength(1);
    });
  });
});

describe('operation (design §10)', () => {
  it('each server reports its health and counts the queries it answered', async () => {
    for (const server of [net.root, net.phone, net.email]) {
      const health = await request(`${server.adminUrl}/healthz`);
      expect(health.statusCode).toBe(200);
      expect(await health.body.json()).toEqual({
        status: 'ok',
        detail: { role: server.role, zones: 1 },
      });
      const metrics = await request(`${server.adminUrl}/metrics`);
      expect(metrics.statusCode).toBe(200);
      const text = await metrics.body.text();
      for (const transport of ['udp', 'tcp', 'doh']) {
        expect(text, `${server.zone} over ${transport}`).toMatch(
          new RegExp(
            `^authoritative_queries_total\\{[^}]*transport="${transport}"[^}]*\\} [1-9]`,
            'm',
          ),
        );
      }
    }
  });

  it('never logs a client address together with a CSI', () => {
    const csis = [...used];
    // The CSI as signed, its digits or address alone, its name, and an email name's hash label.
    const secrets = csis.flatMap((csi) => {
      const label = csiToName(csi).split('.')[0] ?? '';
      return [
        csi,
        csi.replace(/^(tel:\+|mailto:)/, ''),
        csiToName(csi),
        ...(label.length > 1 ? [label] : []),
      ];
    });
    const senderFields = ['remoteAddress', 'client', 'sender', 'ip'];
    for (const server of [net.root, net.phone, net.email]) {
      expect(server.logs.length).toBeGreaterThan(0);
      for (const line of server.logs) {
        const fields = Object.keys(JSON.parse(line) as object);
        if (!fields.some((f) => senderFields.includes(f))) continue;
        for (const secret of secrets) expect(line, secret).not.toContain(secret);
      }
    }
  });

  it('logged no warning or error during the run', () => {
    for (const server of [net.root, net.phone, net.email]) {
      expect(logLines(server.logs, ['warn', 'error']), server.zone).toEqual([]);
    }
  });
});
