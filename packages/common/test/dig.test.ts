import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createLocalCa,
  createMemoryZone,
  createZoneKey,
  issueServerCertificate,
  lookupZone,
  record,
  respondError,
  signRRset,
  signZone,
  startDnsServer,
  type DnsServer,
  type Message,
  type RecordOf,
  type ResourceRecord,
} from '../src/index.js';

// Stock DNS clients against the three listeners: BIND's `dig` (Debian package bind9-dnsutils)
// and Knot's `kdig` (knot-dnsutils). Each part is skipped, with a warning, when its program is
// missing.

function installed(program: string, versionFlag: string): boolean {
  return spawnSync(program, [versionFlag], { stdio: 'ignore' }).error === undefined;
}
const HAVE_DIG = installed('dig', '-v');
const HAVE_KDIG = installed('kdig', '--version');
if (!HAVE_DIG)
  console.warn('dig not installed (Debian package bind9-dnsutils): skipping dig tests');
if (!HAVE_KDIG)
  console.warn('kdig not installed (Debian package knot-dnsutils): skipping kdig tests');

const ORIGIN = '4.4.e164.mimi.arpa';
const MAP_NAME = '8.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa';
const MAP_RDATA = Uint8Array.from([0xa1, 0x61, 0x76, 0x01]);
const now = Math.floor(Date.now() / 1000);
const validity = { inception: now - 3600, expiration: now + 30 * 86_400 };
const key = createZoneKey(ORIGIN, { seed: new Uint8Array(32).fill(7) });
const zone = createMemoryZone(
  ORIGIN,
  signZone(
    ORIGIN,
    [
      record(
        ORIGIN,
        'SOA',
        {
          mname: 'ns1.dp.example',
          rname: 'hostmaster.dp.example',
          serial: 1,
          refresh: 3600,
          retry: 600,
          expire: 604_800,
          minimum: 300,
        },
        3600,
      ),
      record(ORIGIN, 'NS', 'ns1.dp.example', 3600),
      record(MAP_NAME, 'MAP', MAP_RDATA, 600),
    ],
    key,
    validity,
  ),
);
const sign = (rrset: readonly ResourceRecord[]): RecordOf<'RRSIG'> =>
  signRRset([...rrset], key, validity);

function answerFromZone(query: Message): Message {
  const question = query.questions[0];
  if (question === undefined) return respondError(query, 'FORMERR');
  const outcome = lookupZone(zone, question, { dnssecOk: query.edns?.dnssecOk === true, sign });
  if (outcome.kind === 'refused') return respondError(query, 'REFUSED');
  const base = respondError(query, 'NOERROR');
  return {
    ...base,
    flags: { ...base.flags, aa: outcome.kind !== 'referral' },
    answers: outcome.answers,
    authorities: outcome.authorities,
    additionals: outcome.additionals,
  };
}

let server: DnsServer;
let directory: string;
let caFile: string;
let otherCaFile: string;

beforeAll(async () => {
  const ca = await createLocalCa();
  const leaf = await issueServerCertificate(ca, {
    hostnames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  directory = mkdtempSync(join(tmpdir(), 'mimi-dig-'));
  caFile = join(directory, 'ca.pem');
  writeFileSync(caFile, ca.certPem);
  otherCaFile = join(directory, 'other-ca.pem');
  writeFileSync(otherCaFile, (await createLocalCa()).certPem);
  server = await startDnsServer(
    {
      udp: { port: 0 },
      tcp: { port: 0 },
      doh: { port: 0, cert: leaf.certPem, key: leaf.keyPem },
    },
    answerFromZone,
  );
});

afterAll(async () => {
  await server?.close();
  if (directory !== undefined) rmSync(directory, { recursive: true, force: true });
});

/** Runs a client; resolves with its output (dig and kdig print failures there too). */
function run(program: string, args: string[]): Promise<string> {
  return new Promise((resolve) => {
    execFile(program, args, { timeout: 20_000 }, (_error, stdout, stderr) =>
      resolve(`${stdout}${stderr}`),
    );
  });
}

/** What a dig-style output says about the answer. */
function parse(output: string): { status?: string; flags: string[]; answer: string[] } {
  const status = /status: ([A-Z]+)/.exec(output)?.[1];
  const flags = /;; flags: ([a-z ]+);/i.exec(output)?.[1]?.trim().split(/\s+/) ?? [];
  const answer = output
    .split('\n')
    .filter((line) => line.startsWith(`${MAP_NAME}.`))
    .map((line) => line.split(/\s+/).slice(2, 4).join(' '));
  return { ...(status === undefined ? {} : { status }), flags, answer };
}

const port = (listener: 'udp' | 'tcp' | 'doh'): string => String(server[listener]?.port ?? 0);
const MAP_HEX = Buffer.from(MAP_RDATA).toString('hex').toUpperCase();

describe.skipIf(!HAVE_DIG)('dig (BIND 9)', () => {
  it('gets the signed MAP RRset over UDP', async () => {
    const out = await run('dig', [
      '@127.0.0.1',
      '-p',
      port('udp'),
      '+dnssec',
      '+norec',
      MAP_NAME,
      'TYPE65400',
    ]);
    const parsed = parse(out);
    expect(parsed.status, out).toBe('NOERROR');
    expect(parsed.flags).toEqual(expect.arrayContaining(['qr', 'aa']));
    expect(parsed.answer).toEqual(['IN TYPE65400', 'IN RRSIG']);
    expect(out.toUpperCase()).toContain(`\\# 4 ${MAP_HEX}`);
  });

  it('gets the signed MAP RRset over TCP', async () => {
    const out = await run('dig', [
      '@127.0.0.1',
      '-p',
      port('tcp'),
      '+tcp',
      '+dnssec',
      MAP_NAME,
      'TYPE65400',
    ]);
    expect(parse(out), out).toMatchObject({
      status: 'NOERROR',
      answer: ['IN TYPE65400', 'IN RRSIG'],
    });
  });

  it.each([
    { mode: '+https', shown: '(HTTPS)', name: [] },
    { mode: '+https-get', shown: '(HTTPS-GET)', name: ['+tls-hostname=localhost'] },
  ])(
    'gets the signed MAP RRset over DoH with $mode, verifying the server with the CA',
    async ({ mode, shown, name }) => {
      // Without +tls-hostname, dig checks the certificate against the IP address.
      const out = await run('dig', [
        '@127.0.0.1',
        '-p',
        port('doh'),
        mode,
        `+tls-ca=${caFile}`,
        ...name,
        '+dnssec',
        MAP_NAME,
        'TYPE65400',
      ]);
      expect(parse(out), out).toMatchObject({
        status: 'NOERROR',
        answer: ['IN TYPE65400', 'IN RRSIG'],
      });
      expect(out).toContain(shown);
    },
  );

  it('refuses the DoH server when another CA is trusted', async () => {
    const out = await run('dig', [
      '@127.0.0.1',
      '-p',
      port('doh'),
      '+https',
      `+tls-ca=${otherCaFile}`,
      '+tries=1',
      MAP_NAME,
      'TYPE65400',
    ]);
    expect(parse(out).status).toBeUndefined();
  });
});

describe.skipIf(!HAVE_KDIG)('kdig (Knot DNS)', () => {
  it('gets the signed MAP RRset over UDP and TCP', async () => {
    for (const transport of ['+notcp', '+tcp']) {
      const out = await run('kdig', [
        '@127.0.0.1',
        '-p',
        port('udp'),
        transport,
        '+dnssec',
        MAP_NAME,
        'TYPE65400',
      ]);
      const parsed = parse(out);
      expect(parsed.status, out).toBe('NOERROR');
      expect(parsed.flags).toEqual(expect.arrayContaining(['qr', 'aa']));
      expect(parsed.answer).toEqual(['IN TYPE65400', 'IN RRSIG']);
    }
  });

  it.each([
    { mode: '+https', shown: '(HTTP/2-POST)' },
    { mode: '+https-get', shown: '(HTTP/2-GET)' },
  ])(
    'gets the signed MAP RRset over DoH with $mode, verifying the server with the CA',
    async ({ mode, shown }) => {
      const out = await run('kdig', [
        '@127.0.0.1',
        '-p',
        port('doh'),
        mode,
        `+tls-ca=${caFile}`,
        '+tls-hostname=localhost',
        '+dnssec',
        MAP_NAME,
        'TYPE65400',
      ]);
      expect(parse(out), out).toMatchObject({
        status: 'NOERROR',
        answer: ['IN TYPE65400', 'IN RRSIG'],
      });
      expect(out).toContain(shown);
    },
  );
});
