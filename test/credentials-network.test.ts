import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import 'reflect-metadata';
import { SDJwtInstance } from '@sd-jwt/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CredentialError,
  createAttestation,
  createRangeAuthkeys,
  issueSdJwtCredential,
  issueX509Credential,
  keyPairFromSeed,
  parseCsi,
  silentLogger,
  verify,
  verifyCredential,
  type CredentialErrorCode,
} from '@mimi-discovery/common';
import {
  createResolver,
  startResolverServer,
  type Resolver,
  type RunningResolverServer,
} from '@mimi-discovery/resolver';
import { runCli } from '@mimi-discovery/cli';
import { APEX, EMAIL_ZONE, PHONE_ZONE, buildNetwork, type Network } from './helpers/network.js';
import { apiOf, nowSeconds, outboxCode } from './helpers/registration.js';
import { missingTools, runTool } from './helpers/tools.js';

// Issue 17, "credentials from the prover": a recipient proves a +44 number with the command
// line, asks the +44 DP's prover for its attestation as an X.509 certificate and as an SD-JWT,
// and verifiers that know nothing but the DNS check both through our validating resolver (a
// real root and DPs on loopback): `openssl verify` with the prover certificate, the SD-JWT
// library's own verify with the prover key fetched as an AUTHKEY, `verifyCredential` and
// `mimi-discovery credential verify`. A credential signed by a prover of another range is
// refused.

const CSI = 'tel:+442079460018';
const tools = missingTools({ openssl: 'openssl' });

let net: Network;
let resolver: Resolver;
let resolverServer: RunningResolverServer;
let dns: string;
let caFile: string;

const cli = (argv: readonly string[]) =>
  runCli(argv, { cwd: net.dir, env: {}, log: silentLogger, now: nowSeconds });

async function refusal(promise: Promise<unknown>): Promise<CredentialErrorCode> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CredentialError);
  return (error as CredentialError).code;
}

beforeAll(async () => {
  net = await buildNetwork();
  resolver = createResolver(
    {
      rootServers: [{ name: `ns1.${APEX}`, addresses: ['127.0.0.1'], doh: net.root.dohUrl }],
      trustAnchor: net.trustAnchor,
      ca: net.caPem,
    },
    { log: silentLogger },
  );
  resolverServer = await startResolverServer({ listen: { udp: 0 } }, resolver, {
    log: silentLogger,
  });
  const udp = resolverServer.dns?.udp;
  if (udp === undefined) throw new Error('the resolver serves no UDP');
  dns = `udp://127.0.0.1:${udp.port}`;
  caFile = join(net.dir, 'ca-for-cli.pem');
  writeFileSync(caFile, net.caPem);

  // The recipient, with the command line: a key, a code from the DP's outbox, an attestation.
  const phone = apiOf(net.phone);
  const api = ['--api', phone.url, '--ca', caFile];
  expect((await cli(['recipient', 'keygen', '--out', 'alice.key'])).exitCode).toBe(0);
  const proved = await cli(['recipient', 'prove', ...api, '--csi', '+44 20 7946 0018']);
  expect(proved.exitCode, proved.stderr).toBe(0);
  const code = await outboxCode(phone.outbox ?? '', CSI);
  const confirmed = await cli([
    'recipient',
    'confirm',
    ...api,
    '--csi',
    CSI,
    '--code',
    code,
    '--key',
    'alice.key',
  ]);
  expect(confirmed.exitCode, confirmed.stderr).toBe(0);
  for (const [format, out, more] of [
    ['x509', 'alice.pem', ['--issuer-out', 'prover.pem']],
    ['sd-jwt', 'alice.sd-jwt', []],
  ] as const) {
    const issued = await cli([
      'recipient',
      'credential',
      ...api,
      '--key',
      'alice.key',
      '--format',
      format,
      '--out',
      out,
      ...more,
    ]);
    expect(issued.exitCode, issued.stderr).toBe(0);
  }
}, 120_000);

afterAll(async () => {
  await resolverServer?.close();
  await resolver?.close();
  await net?.close();
});

const file = (name: string): string => readFileSync(join(net.dir, name), 'utf8');

describe('credentials from the prover, checked with the DNS alone', () => {
  it('never overwrites a credential file', async () => {
    const again = await cli([
      'recipient',
      'credential',
      '--api',
      apiOf(net.phone).url,
      '--ca',
      caFile,
      '--key',
      'alice.key',
      '--format',
      'x509',
      '--out',
      'alice.pem',
    ]);
    expect(again.exitCode).toBe(2);
    expect(again.stderr).toContain('ERR_CLI_EXISTS');
  });

  it.skipIf(tools.has('openssl'))('openssl verify accepts the X.509 credential', async () => {
    // The file holds the leaf then the prover certificate; openssl reads the first.
    const result = await runTool('openssl', [
      'verify',
      '-CAfile',
      join(net.dir, 'prover.pem'),
      join(net.dir, 'alice.pem'),
    ]);
    expect(result.output).toContain(': OK');
    expect(result.status).toBe(0);
  });

  it("the SD-JWT library's verify accepts the SD-JWT with the prover key from DNS", async () => {
    const lookup = createRangeAuthkeys({ resolver: dns, cacheEntries: 1 });
    try {
      const { zone, authkeys } = await lookup.lookup(parseCsi(CSI));
      expect(zone).toBe(PHONE_ZONE);
      const provers = authkeys.flatMap((rr) =>
        rr.type === 'AUTHKEY' && rr.data.role === 'prover' ? [rr.data.publicKey] : [],
      );
      expect(provers).toHaveLength(1);
      const key = provers[0] as Uint8Array;
      const library = new SDJwtInstance({
        hasher: async (data: string | ArrayBuffer) =>
          new Uint8Array(
            await crypto.subtle.digest(
              'SHA-256',
              typeof data === 'string' ? new TextEncoder().encode(data) : data,
            ),
          ),
        verifier: (data: string, signature: string) =>
          verify(new Uint8Array(Buffer.from(signature, 'base64url')), Buffer.from(data), key),
      });
      const { payload } = await library.verify(file('alice.sd-jwt').trim());
      expect(payload).toMatchObject({ iss: `dns:${PHONE_ZONE}`, csi: CSI });
    } finally {
      await lookup.close();
    }
  });

  it('verifyCredential and the command line accept both credentials', async () => {
    for (const name of ['alice.pem', 'alice.sd-jwt']) {
      const verified = await verifyCredential(file(name), { resolver: dns });
      expect(verified).toMatchObject({ csi: CSI, zone: PHONE_ZONE });
      const checked = await cli(['credential', 'verify', name, '--resolver', dns, '--json']);
      expect(checked.exitCode, checked.stderr).toBe(0);
      expect(JSON.parse(checked.stdout)).toMatchObject({ csi: CSI, zone: PHONE_ZONE });
    }
  });

  it('verifies an SD-JWT that withholds the CSI at the zone of its issuer only', async () => {
    const withheld = `${file('alice.sd-jwt').split('~')[0]}~`;
    const verified = await verifyCredential(withheld, { resolver: dns });
    expect(verified).toMatchObject({ format: 'sd-jwt', zone: PHONE_ZONE });
    expect(verified.csi).toBeUndefined();
    // An issuer outside the namespace is no range, whatever its own DNS would list.
    const prover = net.phone.provider.store.proverKey();
    const now = nowSeconds();
    const attestation = createAttestation(
      { csi: CSI, key: prover.publicKey, nbf: now, exp: now + 86_400 },
      prover.secretKey,
    );
    const foreign = await issueSdJwtCredential(
      {
        zone: 'dp.example',
        csi: CSI,
        attestation,
        prover: { secretKey: prover.secretKey, notAfter: now + 86_400 },
      },
      (n) => new Uint8Array(n),
    );
    expect(await refusal(verifyCredential(`${foreign.split('~')[0]}~`, { resolver: dns }))).toBe(
      'ERR_CREDENTIAL_RANGE_MISMATCH',
    );
  });

  it("refuses a credential whose prover is not an AUTHKEY of the CSI's range", async () => {
    // The @example.com DP's prover is an AUTHKEY of its own range, never of +44.
    const other = net.email.provider.store.proverKey();
    const recipient = keyPairFromSeed(new Uint8Array(32).fill(0x44));
    const now = nowSeconds();
    const attestation = createAttestation(
      { csi: CSI, key: recipient.publicKey, nbf: now, exp: now + 86_400 },
      other.secretKey,
    );
    const prover = { secretKey: other.secretKey, notAfter: now + 86_400 };
    const claimsPlus44 = { zone: PHONE_ZONE, csi: CSI, attestation, prover };
    const claimsOwn = { ...claimsPlus44, zone: EMAIL_ZONE };
    const x509 = await issueX509Credential(claimsPlus44);
    expect(await refusal(verifyCredential(x509.credential, { resolver: dns }))).toBe(
      'ERR_CREDENTIAL_PROVER_NOT_AUTHORIZED',
    );
    const ownX509 = await issueX509Credential(claimsOwn);
    expect(await refusal(verifyCredential(ownX509.credential, { resolver: dns }))).toBe(
      'ERR_CREDENTIAL_RANGE_MISMATCH',
    );
    const random = (n: number): Uint8Array => crypto.getRandomValues(new Uint8Array(n));
    const sdJwt = await issueSdJwtCredential(claimsPlus44, random);
    expect(await refusal(verifyCredential(sdJwt, { resolver: dns }))).toBe(
      'ERR_CREDENTIAL_PROVER_NOT_AUTHORIZED',
    );
    const ownSdJwt = await issueSdJwtCredential(claimsOwn, random);
    expect(await refusal(verifyCredential(ownSdJwt, { resolver: dns }))).toBe(
      'ERR_CREDENTIAL_RANGE_MISMATCH',
    );
    writeFileSync(join(net.dir, 'forged.pem'), x509.credential);
    const checked = await cli(['credential', 'verify', 'forged.pem', '--resolver', dns]);
    expect(checked.exitCode).toBe(2);
    expect(checked.stderr).toContain('ERR_CREDENTIAL_PROVER_NOT_AUTHORIZED');
  });

  it('is unverifiable, never a pass, when the resolver does not answer', async () => {
    expect(
      await refusal(
        verifyCredential(file('alice.pem'), { resolver: 'tcp://127.0.0.1:1', timeoutMs: 500 }),
      ),
    ).toBe('ERR_CREDENTIAL_UNVERIFIABLE');
  });
});
