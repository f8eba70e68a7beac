import {
  MAX_CLOCK_SKEW_SECONDS,
  createCredentialRequest,
  encodeCredentialRequest,
  sign,
  signingInput,
  verifyCredentialWithAuthkeys,
  type AuthkeyData,
  type CredentialFormat,
  type Ed25519KeyPair,
} from '@mimi-discovery/common';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createAuthoritativeMetrics, type AuthoritativeMetrics } from '../src/metrics.js';
import { createOutboxChannel } from '../src/registration/channels.js';
import {
  startRegistrationApi,
  type RegistrationApi,
} from '../src/registration/registration-api.js';
import { createRegistrar } from '../src/registration/registration.js';
import { REGISTRATION_ROUTES } from '../src/registration/routes.js';
import {
  DAY,
  EMAIL,
  INDEPENDENT_PROVER,
  OTHER_RECIPIENT,
  PHONE,
  PHONE_ZONE,
  PROVER_SEED,
  RECIPIENT,
  STRANGER,
  T0,
  attest,
  b64,
  createFixture,
  snapshot,
  type Fixture,
  type HeldAttestation,
} from './registration-fixture.js';

/**
 * `POST /v1/credentials` against a real registration API over a memory store: the DP's prover
 * issues both profiles for its own attestations and refuses every other request, storing
 * nothing either way.
 */

interface Reply {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

let fixture: Fixture;
let api: RegistrationApi;
let metrics: AuthoritativeMetrics;

async function start(limits: { requestsPerClientPerMinute?: number } = {}): Promise<void> {
  const registrar = createRegistrar({
    store: fixture.store,
    channels: { fallback: createOutboxChannel(fixture.outbox) },
    now: () => fixture.clock.now,
    limits,
    randomBytes: (n) => new Uint8Array(n).fill(0x5a),
    events: metrics.registration,
  });
  api = await startRegistrationApi({ port: 0 }, registrar);
}

beforeEach(async () => {
  fixture = await createFixture();
  metrics = createAuthoritativeMetrics(fixture.store);
  await start();
});

afterEach(async () => {
  await api.close();
  await fixture.cleanup();
});

async function post(body: unknown): Promise<Reply> {
  const response = await fetch(`${api.url}${REGISTRATION_ROUTES.credentials.path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** The DP's own attestation of PHONE to RECIPIENT, as `confirm` would issue it. */
function ownAttestation(nbf = T0, exp = T0 + 30 * DAY): HeldAttestation {
  return attest(PHONE, RECIPIENT, PROVER_SEED, nbf, exp);
}

function request(
  options: {
    att?: HeldAttestation;
    format?: CredentialFormat;
    iat?: number;
    signer?: Ed25519KeyPair;
  } = {},
): string {
  const att = options.att ?? ownAttestation();
  const signer = options.signer ?? RECIPIENT;
  const r = createCredentialRequest(
    { csi: att.csi, att, format: options.format ?? 'x509', iat: options.iat ?? T0 },
    RECIPIENT.secretKey,
  );
  if (signer === RECIPIENT) return b64(encodeCredentialRequest(r));
  // The same content signed by another key than the attested one.
  // signingInput ignores the request's own `sig`.
  const sig = sign(signingInput('credential', r), signer.secretKey);
  return b64(encodeCredentialRequest({ ...r, sig }));
}

function zoneAuthkeys(): AuthkeyData[] {
  return fixture.store
    .readRRset(PHONE_ZONE, PHONE_ZONE, 'AUTHKEY')
    .flatMap((rr) => (rr.type === 'AUTHKEY' ? [rr.data] : []));
}

/** `authoritative_registration_credentials_issued_total{format}` as scraped now. */
async function issuedCount(format: CredentialFormat): Promise<number> {
  const text = await metrics.registry.registry.metrics();
  const line = text
    .split('\n')
    .find((l) =>
      l.startsWith(`authoritative_registration_credentials_issued_total{format="${format}"} `),
    );
  return Number(line?.split(' ')[1]);
}

describe('POST /v1/credentials', () => {
  it('counts the credentials it issues by format, and no refused request', async () => {
    expect(await issuedCount('x509')).toBe(0);
    expect(await issuedCount('sd-jwt')).toBe(0);
    expect((await post({ csi: PHONE, request: request() })).status).toBe(200);
    expect((await post({ csi: PHONE, request: request({ format: 'sd-jwt' }) })).status).toBe(200);
    expect((await post({ csi: PHONE, request: request({ format: 'sd-jwt' }) })).status).toBe(200);
    // Refused: signed by a key that is not the attested one.
    expect((await post({ csi: PHONE, request: request({ signer: STRANGER }) })).status).toBe(400);
    expect(await issuedCount('x509')).toBe(1);
    expect(await issuedCount('sd-jwt')).toBe(2);
  });

  it('issues the X.509 credential of its own attestation, the same octets each time', async () => {
    const before = snapshot(fixture.store, PHONE_ZONE);
    const first = await post({ csi: PHONE, request: request() });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ format: 'x509' });
    expect(first.body['credential']).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(first.body['issuer']).toMatch(/^-----BEGIN CERTIFICATE-----/);
    const verified = await verifyCredentialWithAuthkeys(String(first.body['credential']), {
      zone: PHONE_ZONE,
      authkeys: zoneAuthkeys(),
      now: T0 + 1,
    });
    expect(verified).toMatchObject({ csi: PHONE, nbf: T0, exp: T0 + 30 * DAY });
    // Typed the way people type it, another request a second later: the same certificate.
    fixture.clock.now = T0 + 1;
    const again = await post({ csi: '+44 20 7946 0018', request: request({ iat: T0 + 1 }) });
    expect(again.body).toEqual(first.body);
    expect(snapshot(fixture.store, PHONE_ZONE)).toEqual(before);
  });

  it('issues the SD-JWT credential with the CSI disclosable', async () => {
    const reply = await post({ csi: PHONE, request: request({ format: 'sd-jwt' }) });
    expect(reply.status).toBe(200);
    expect(reply.body['format']).toBe('sd-jwt');
    expect(reply.body).not.toHaveProperty('issuer');
    const verified = await verifyCredentialWithAuthkeys(String(reply.body['credential']), {
      zone: PHONE_ZONE,
      authkeys: zoneAuthkeys(),
      now: T0 + 1,
    });
    expect(verified).toMatchObject({ format: 'sd-jwt', csi: PHONE });
    expect(Buffer.from(verified.key)).toEqual(Buffer.from(RECIPIENT.publicKey));
  });

  it('answers concurrent callers alike', async () => {
    const replies = await Promise.all(
      Array.from({ length: 12 }, () => post({ csi: PHONE, request: request() })),
    );
    expect(new Set(replies.map((r) => JSON.stringify(r.body))).size).toBe(1);
    expect(replies.every((r) => r.status === 200)).toBe(true);
  });

  it('signs with its own prover key only, even for a prover the range lists', async () => {
    const before = snapshot(fixture.store, PHONE_ZONE);
    for (const prover of [INDEPENDENT_PROVER, STRANGER]) {
      const att = attest(PHONE, RECIPIENT, prover.secretKey, T0);
      const reply = await post({ csi: PHONE, request: request({ att }) });
      expect(reply.status).toBe(403);
      expect(reply.body).toMatchObject({ error: { code: 'ERR_PROVER_NOT_AUTHORIZED' } });
    }
    expect(snapshot(fixture.store, PHONE_ZONE)).toEqual(before);
  });

  it('refuses a CSI of a range it does not serve', async () => {
    const att = attest('tel:+12025550100', RECIPIENT, PROVER_SEED, T0);
    const reply = await post({ csi: 'tel:+12025550100', request: request({ att }) });
    expect(reply.status).toBe(404);
    expect(reply.body).toMatchObject({ error: { code: 'ERR_NOT_AUTHORITATIVE' } });
  });

  it('refuses a request not signed by the attested key (no proof of possession)', async () => {
    const reply = await post({ csi: PHONE, request: request({ signer: OTHER_RECIPIENT }) });
    expect(reply.status).toBe(400);
    expect(reply.body).toMatchObject({
      error: { code: 'ERR_CREDENTIAL_REQUEST_INVALID', detail: 'bad-signature' },
    });
  });

  it('refuses an old or replayed request once its iat is past the clock skew', async () => {
    const old = await post({
      csi: PHONE,
      request: request({ iat: T0 - MAX_CLOCK_SKEW_SECONDS - 1 }),
    });
    expect(old.body).toMatchObject({
      error: { code: 'ERR_CREDENTIAL_REQUEST_INVALID', detail: 'expired' },
    });
    const captured = request();
    expect((await post({ csi: PHONE, request: captured })).status).toBe(200);
    fixture.clock.now = T0 + MAX_CLOCK_SKEW_SECONDS + 1;
    const replayed = await post({ csi: PHONE, request: captured });
    expect(replayed.status).toBe(400);
    expect(replayed.body).toMatchObject({ error: { detail: 'expired' } });
    const future = await post({
      csi: PHONE,
      request: request({ iat: fixture.clock.now + MAX_CLOCK_SKEW_SECONDS + 1 }),
    });
    expect(future.body).toMatchObject({ error: { detail: 'not-yet-valid' } });
  });

  it('refuses an expired attestation, another CSI and an unknown format', async () => {
    fixture.clock.now = T0 + 31 * DAY;
    const expired = await post({ csi: PHONE, request: request({ iat: fixture.clock.now }) });
    expect(expired.body).toMatchObject({
      error: { code: 'ERR_CREDENTIAL_REQUEST_INVALID', detail: 'expired' },
    });
    fixture.clock.now = T0;
    const email = attest(EMAIL, RECIPIENT, PROVER_SEED, T0);
    const mismatch = await post({ csi: PHONE, request: request({ att: email }) });
    expect(mismatch.body).toMatchObject({ error: { detail: 'csi-mismatch' } });
    const bytes = Buffer.from(request(), 'base64url');
    const at = bytes.indexOf(Buffer.from('x509'));
    bytes.write('pdf!', at, 'latin1');
    const unknown = await post({ csi: PHONE, request: bytes.toString('base64url') });
    expect(unknown.status).toBe(400);
    expect(unknown.body).toMatchObject({
      error: { code: 'ERR_CREDENTIAL_REQUEST_INVALID', detail: 'malformed' },
    });
    const missing = await post({ csi: PHONE });
    expect(missing.body).toMatchObject({ error: { code: 'ERR_BAD_REQUEST', detail: 'request' } });
  });

  it('is rate limited per client before anything else', async () => {
    await api.close();
    await start({ requestsPerClientPerMinute: 2 });
    expect((await post({ csi: PHONE, request: request() })).status).toBe(200);
    expect((await post({ csi: 'tel:+12025550100', request: request() })).status).toBe(404);
    const third = await post({ csi: PHONE, request: request() });
    expect(third.status).toBe(429);
    expect(third.body).toMatchObject({ error: { code: 'ERR_RATE_LIMITED' } });
  });
});
