import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createTrustAnchor,
  createZoneKey,
  dsRecord,
  formatBindTrustAnchors,
  formatRecord,
  formatTime,
  formatTrustAnchor,
  formatZone,
  signZone,
  type RecordOf,
  type ResourceRecord,
  record,
} from '../src/index.js';

/**
 * Independent validation of what the signer and the presentation writer produce: stock DNSSEC
 * tools read the zone file and check every signature and the NSEC3 chain. Debian packages:
 * ldnsutils (ldns-verify-zone), bind9-utils (dnssec-verify, named-checkzone, named-checkconf).
 */

function onPath(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
}

function run(tool: string, args: string[]): { status: number | null; output: string } {
  const result = spawnSync(tool, args, { encoding: 'utf8' });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

const LDNS = onPath('ldns-verify-zone');
const DNSSEC_VERIFY = onPath('dnssec-verify');
const CHECKZONE = onPath('named-checkzone');
const CHECKCONF = onPath('named-checkconf');
if (!LDNS) {
  console.warn(
    'ldns-verify-zone not installed (Debian package ldnsutils): skipping independent zone validation',
  );
}
if (!DNSSEC_VERIFY || !CHECKZONE || !CHECKCONF) {
  console.warn(
    'dnssec-verify, named-checkzone or named-checkconf not installed (Debian package bind9-utils): skipping those checks',
  );
}

const rr = <T extends ResourceRecord['type']>(
  name: string,
  type: T,
  data: RecordOf<T>['data'],
  ttl = 3600,
): ResourceRecord => record(name, type, data, ttl);

// A `+44` range zone: apex with AUTHKEY and the DoH endpoint of its nameserver, a MAP (whose
// owner makes nine empty non-terminals), a MAPREF, a signed delegation (+447, DS and glue) and
// an unsigned one (+443, glue only).
const ORIGIN = '4.4.e164.mimi.arpa';
const key = createZoneKey(ORIGIN, { seed: new Uint8Array(32).fill(44) });
const child = createZoneKey(`7.${ORIGIN}`, { seed: new Uint8Array(32).fill(47) });

const unsigned: ResourceRecord[] = [
  rr(ORIGIN, 'SOA', {
    mname: `ns1.${ORIGIN}`,
    rname: `hostmaster.${ORIGIN}`,
    serial: 2025010101,
    refresh: 7200,
    retry: 900,
    expire: 1209600,
    minimum: 300,
  }),
  rr(ORIGIN, 'NS', `ns1.${ORIGIN}`),
  rr(ORIGIN, 'AUTHKEY', {
    role: 'prover',
    algorithm: 15,
    notAfter: 2_000_000_000,
    publicKey: new Uint8Array(32).fill(0xab),
  }),
  rr(`ns1.${ORIGIN}`, 'A', '192.0.2.53'),
  rr(`ns1.${ORIGIN}`, 'AAAA', '2001:db8::53'),
  rr(`_dns.ns1.${ORIGIN}`, 'SVCB', {
    priority: 1,
    target: `ns1.${ORIGIN}`,
    params: { alpn: ['h2', 'http/1.1'], port: 443, dohpath: '/dns-query{?dns}' },
  }),
  // An oblivious gateway's key and its DoH service (RFC 9540 §4), written with key8 for ohttp.
  rr(`resolver.${ORIGIN}`, 'KEYCONF', {
    kind: 'ohttp',
    config: new Uint8Array(41).fill(0x11),
    notBefore: 2_000_000_000,
    notAfter: 2_000_086_400,
  }),
  rr(`_dns.resolver.${ORIGIN}`, 'SVCB', {
    priority: 1,
    target: `resolver.${ORIGIN}`,
    params: { alpn: ['h2'], port: 8443, dohpath: '/dns-query{?dns}', ohttp: true },
  }),
  rr(`8.1.0.0.6.4.9.7.0.2.${ORIGIN}`, 'MAP', Uint8Array.of(0xa1, 0x61, 0x76, 0x01), 300),
  rr(`9.9.9.9.6.4.9.7.0.2.${ORIGIN}`, 'MAPREF', 'dp.msp.example'),
  rr(`7.${ORIGIN}`, 'NS', `ns1.7.${ORIGIN}`),
  dsRecord(child, 3600),
  rr(`ns1.7.${ORIGIN}`, 'A', '192.0.2.7'),
  rr(`_dns.ns1.7.${ORIGIN}`, 'SVCB', {
    priority: 1,
    target: `ns1.7.${ORIGIN}`,
    params: { alpn: ['h2'], dohpath: '/dns-query{?dns}' },
  }),
  rr(`3.${ORIGIN}`, 'NS', 'ns.operator.example'),
  rr(`3.${ORIGIN}`, 'NS', `ns1.3.${ORIGIN}`),
  rr(`ns1.3.${ORIGIN}`, 'A', '192.0.2.3'),
];

// These tools validate against the system clock, so the signatures are valid around it.
const NOW = Math.floor(Date.now() / 1000);
const signed = signZone(ORIGIN, unsigned, key, {
  inception: NOW - 3600,
  expiration: NOW + 14 * 86_400,
  nsec3: true,
});

const dir = mkdtempSync(join(tmpdir(), 'mimi-ldns-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const zoneFile = join(dir, `${ORIGIN}.zone`);
writeFileSync(zoneFile, formatZone(ORIGIN, signed));
const anchor = createTrustAnchor(ORIGIN, [key.dnskey]);
const dsFile = join(dir, 'ds.key');
writeFileSync(
  dsFile,
  `${formatRecord({ name: ORIGIN, type: 'DS', class: 'IN', ttl: 3600, data: anchor.ds[0] as RecordOf<'DS'>['data'] })}\n`,
);
const anchorFile = join(dir, 'anchor.key');
writeFileSync(anchorFile, formatTrustAnchor(anchor));
const bindKeys = join(dir, 'bind.keys');
writeFileSync(bindKeys, formatBindTrustAnchors(anchor));

describe('independent validation of a signed zone', () => {
  it('writes the zone as stock tools expect it', () => {
    expect(signed.some((r) => r.type === 'NSEC3PARAM')).toBe(true);
    // The MAP owner, the MAPREF owner and their empty non-terminals are all covered, and the
    // KEYCONF and `_dns` SVCB owners of the gateway.
    expect(signed.filter((r) => r.type === 'NSEC3')).toHaveLength(21);
  });

  it.skipIf(!LDNS)('ldns-verify-zone: Zone is verified and complete', () => {
    const { status, output } = run('ldns-verify-zone', [
      '-t',
      formatTime(NOW),
      '-V',
      '3',
      zoneFile,
    ]);
    expect(output, output).toContain('Zone is verified and complete');
    expect(status).toBe(0);
  });

  it.skipIf(!LDNS)('ldns-verify-zone -k: the DS and the DNSKEY trust anchors match', () => {
    for (const file of [dsFile, anchorFile]) {
      const { status, output } = run('ldns-verify-zone', ['-k', file, zoneFile]);
      expect(output, output).toContain('Zone is verified and complete');
      expect(status).toBe(0);
    }
    const other = createZoneKey(ORIGIN, { seed: new Uint8Array(32).fill(45) });
    const wrong = join(dir, 'wrong.key');
    writeFileSync(wrong, formatTrustAnchor(createTrustAnchor(ORIGIN, [other.dnskey])));
    const { status, output } = run('ldns-verify-zone', ['-k', wrong, zoneFile]);
    expect(output).not.toContain('Zone is verified and complete');
    expect(status).not.toBe(0);
  });

  it.skipIf(!LDNS)('ldns-verify-zone notices a record changed after signing', () => {
    const tampered = signed.map((r) =>
      r.type === 'A' && r.name === `ns1.${ORIGIN}` ? { ...r, data: '192.0.2.54' } : r,
    );
    const file = join(dir, 'tampered.zone');
    writeFileSync(file, formatZone(ORIGIN, tampered));
    const { status, output } = run('ldns-verify-zone', [file]);
    expect(output).not.toContain('Zone is verified and complete');
    expect(status).not.toBe(0);
  });

  it.skipIf(!DNSSEC_VERIFY)('dnssec-verify accepts the zone signed by one combined key', () => {
    // -z: every RRset is signed by the KSK (flags 257), which is the design's one key.
    const { status, output } = run('dnssec-verify', ['-z', '-o', ORIGIN, zoneFile]);
    expect(output, output).toContain('Zone fully signed');
    expect(status).toBe(0);
  });

  it.skipIf(!CHECKZONE)('named-checkzone loads the zone with full integrity checks', () => {
    const { status, output } = run('named-checkzone', [
      '-i',
      'full',
      '-k',
      'fail',
      ORIGIN,
      zoneFile,
    ]);
    // It warns that the glue names of both delegations have no address records; it does the
    // same for a minimal unsigned zone with glue. The zone itself loads.
    expect(output, output).toMatch(/loaded serial 2025010101 \(DNSSEC signed\)\nOK/);
    expect(status).toBe(0);
  });

  it.skipIf(!CHECKCONF)(
    'named-checkconf reads the trust-anchors statement written for delv -a',
    () => {
      const { status, output } = run('named-checkconf', [bindKeys]);
      expect(output, output).toBe('');
      expect(status).toBe(0);
    },
  );
});
