import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import {
  attestsCsi,
  createLocalCa,
  createMaprefRequest,
  createRemoval,
  createRevocation,
  encodeAttestation,
  issueServerCertificate,
  keyPairFromSeed,
  parseCsi,
} from '@mimi-discovery/common';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  API_CONNECTIONS_PER_CLIENT,
  BODY_TIMEOUT_MS,
  HEADERS_TIMEOUT_MS,
  MAX_REGISTRATION_RESPONSE_OCTETS,
  REGISTRATION_CLIENT_CONNECTIONS,
  REGISTRATION_CLIENT_TIMEOUT_MS,
  REGISTRATION_ROUTES,
  RegistrationClientError,
  createOutboxChannel,
  createRegistrar,
  createRegistrationClient,
  lastOutboxCode,
  startRegistrationApi,
  type RegistrationApi,
  type RegistrationClient,
} from '../src/index.js';
import {
  CSIP,
  DAY,
  INDEPENDENT_PROVER,
  OTHER_RECIPIENT,
  PHONE,
  PHONE_NAME,
  PHONE_ZONE,
  PROVER_SEED,
  RECIPIENT,
  T0,
  attest,
  createFixture,
  held,
  mappingOf,
  type Fixture,
} from './registration-fixture.js';
import { rejectionOf } from '../../../test/helpers/rejection.js';

// The registration client against the real registration API over HTTPS, and against servers
// that answer what the API never would.

/** The error `call` rejects with, a {@link RegistrationClientError}; fails the test when it resolves. */
function refusal(call: Promise<unknown>): Promise<RegistrationClientError> {
  return rejectionOf(call, RegistrationClientError);
}

describe('the registration client against the registration API', () => {
  let fixture: Fixture;
  let server: RegistrationApi;
  let client: RegistrationClient;
  let ca: string;

  beforeAll(async () => {
    const authority = await createLocalCa({ commonName: 'registration client test CA' });
    ca = authority.certPem;
    const leaf = await issueServerCertificate(authority, {
      hostnames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
    });
    tls = { cert: leaf.certPem, key: leaf.keyPem };
  });
  let tls: { cert: string; key: string };

  beforeEach(async () => {
    fixture = await createFixture();
    const registrar = createRegistrar({
      store: fixture.store,
      channels: { fallback: createOutboxChannel(fixture.outbox) },
      now: () => fixture.clock.now,
      limits: { requestsPerClientPerMinute: 1000, sendsPerCsiPerHour: 2 },
    });
    server = await startRegistrationApi({ port: 0, tls }, registrar);
    client = createRegistrationClient({ url: server.url, ca });
  });

  afterEach(async () => {
    await client.close();
    await server.close();
    await fixture.cleanup();
  });

  const storedKeys = (): string[] =>
    fixture.store
      .readRRset(PHONE_ZONE, PHONE_NAME, 'MAP')
      .map((rr) => (rr.type === 'MAP' ? Buffer.from(rr.data).toString('hex') : ''));

  it('proves, confirms, publishes, points and withdraws a MAPREF, and removes, each with its status', async () => {
    const proved = await client.prove('+44 (0)20 7946 0018');
    expect(proved).toEqual({
      status: REGISTRATION_ROUTES.prove.status,
      result: { csi: PHONE, expiresAt: T0 + 600, channel: 'outbox' },
    });
    const code = await lastOutboxCode(fixture.outbox, PHONE);
    expect(code).toMatch(/^\d{6}$/);

    const confirmed = await client.confirm({
      csi: '+44 20 7946 0018',
      code: code ?? '',
      key: RECIPIENT.publicKey,
    });
    const prover = keyPairFromSeed(PROVER_SEED).publicKey;
    expect(confirmed.status).toBe(200);
    expect(confirmed.result).toMatchObject({
      prover,
      nbf: T0,
      exp: T0 + 365 * DAY,
      attestation: { v: 2, key: RECIPIENT.publicKey, prover },
    });
    expect(confirmed.result.attestation).not.toHaveProperty('csi');
    expect(attestsCsi(confirmed.result.attestation, PHONE)).toBe(true);
    expect(confirmed.result.encoded).toEqual(encodeAttestation(confirmed.result.attestation));
    const att = held(confirmed.result.attestation, PHONE);

    const published = await client.publishMapping(mappingOf({ att, seq: 3, iat: T0 }));
    expect(published.status).toBe(201);
    expect(published.result).toEqual({
      zone: PHONE_ZONE,
      name: PHONE_NAME,
      serial: expect.any(Number),
    });
    expect(storedKeys()).toHaveLength(1);

    const target = `${PHONE_NAME.replace('.e164.mimi.arpa', '')}.dp.msp.example`;
    const pointed = await client.publishMapref(
      createMaprefRequest({ csi: PHONE, target, iat: T0, att }, RECIPIENT.secretKey),
    );
    expect(pointed.status).toBe(201);
    expect(fixture.store.readRRset(PHONE_ZONE, PHONE_NAME, 'MAPREF').map((r) => r.data)).toEqual([
      target,
    ]);
    const withdrawn = await client.publishMapref(
      createMaprefRequest({ csi: PHONE, target: null, iat: T0 + 1, att }, RECIPIENT.secretKey),
    );
    expect(withdrawn.status).toBe(201);
    expect(withdrawn.result.serial).toBeGreaterThan(pointed.result.serial);
    expect(fixture.store.readRRset(PHONE_ZONE, PHONE_NAME, 'MAPREF')).toEqual([]);

    const removed = await client.remove(
      createRemoval({ csi: PHONE, seq: 3, iat: T0 + 2 }, RECIPIENT.secretKey),
    );
    expect(removed).toMatchObject({ status: 200, result: { zone: PHONE_ZONE, name: PHONE_NAME } });
    expect(storedKeys()).toEqual([]);
    // The client's table of routes says what the API answered.
    const { prove, confirm, mappings, maprefs, removals } = REGISTRATION_ROUTES;
    expect(
      [proved, confirmed, published, pointed, withdrawn, removed].map((r) => r.status),
    ).toEqual([prove, confirm, mappings, maprefs, maprefs, removals].map((route) => route.status));
  });

  it('revokes as a CSIP, reporting how many mappings went', async () => {
    const att = attest(PHONE, RECIPIENT, INDEPENDENT_PROVER.secretKey, T0 - 10);
    await client.publishMapping(mappingOf({ att, iat: T0 }));
    const revoked = await client.revoke(
      createRevocation({ csi: PHONE, before: T0, iat: T0 }, CSIP.secretKey),
    );
    expect(revoked).toEqual({
      status: 200,
      result: { zone: PHONE_ZONE, name: PHONE_NAME, serial: expect.any(Number), removed: 1 },
    });
    expect(storedKeys()).toEqual([]);
  });

  it("carries the API's stable code, status and detail in a refusal, and leaves the store as it was", async () => {
    await client.prove(PHONE);
    const code = (await lastOutboxCode(fixture.outbox, PHONE)) ?? '';
    const wrong = await refusal(
      client.confirm({
        csi: PHONE,
        code: code === '000000' ? '111111' : '000000',
        key: RECIPIENT.publicKey,
      }),
    );
    expect(wrong).toMatchObject({ code: 'ERR_CODE_INVALID', status: 403 });
    expect(wrong.message).toBe('the code is not valid for this CSI; 4 attempts left');

    const att = attest(PHONE, RECIPIENT, INDEPENDENT_PROVER.secretKey, T0 - 10);
    await client.publishMapping(mappingOf({ att, seq: 5, iat: T0 }));
    const before = storedKeys();
    const stale = await refusal(client.publishMapping(mappingOf({ att, seq: 4, iat: T0 })));
    expect(stale).toMatchObject({ code: 'ERR_STALE_SEQ', status: 409 });
    const forged = await refusal(
      client.publishMapping({ csi: PHONE, mapping: new Uint8Array([0xa0]) }),
    );
    expect(forged).toMatchObject({ code: 'ERR_MAPPING_INVALID', status: 400 });
    expect(forged.detail).toEqual(expect.any(String));
    expect(storedKeys()).toEqual(before);
  });

  it('says when a rate-limited request may be sent again', async () => {
    await client.prove(PHONE);
    await client.prove(PHONE);
    const limited = await refusal(client.prove(PHONE));
    expect(limited).toMatchObject({ code: 'ERR_RATE_LIMITED', status: 429 });
    expect(limited.retryAfter).toBeGreaterThan(0);
  });

  it('acknowledges each of many concurrent publishes through one client', async () => {
    const csis = Array.from({ length: 24 }, (_, i) => parseCsi(`+44 20 7946 ${1000 + i}`));
    const answers = await Promise.all(
      csis.map((csi) =>
        client.publishMapping(
          mappingOf({
            att: attest(csi, RECIPIENT, INDEPENDENT_PROVER.secretKey, T0 - 10),
            iat: T0,
          }),
        ),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual(csis.map(() => 201));
    expect(new Set(answers.map((a) => a.result.name)).size).toBe(csis.length);
  });

  it('does not trust the API without its CA', async () => {
    const untrusting = createRegistrationClient({ url: server.url });
    try {
      const error = await refusal(untrusting.prove(PHONE));
      expect(error.code).toBe('ERR_API_UNREACHABLE');
      expect(error.status).toBeUndefined();
    } finally {
      await untrusting.close();
    }
  });
});

describe('the registration client against a server that is not the API', () => {
  type Answer = (res: ServerResponse) => void;
  const answers = new Map<string, Answer>();
  const sockets = new Set<Socket>();
  let hostile: Server;
  let url: string;

  beforeAll(async () => {
    hostile = createServer((req, res) => {
      req.resume();
      req.once('end', () => {
        const answer = answers.get(req.url ?? '');
        if (answer === undefined) res.writeHead(404).end();
        else answer(res);
      });
    });
    hostile.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => hostile.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(hostile.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => hostile.close(() => resolve()));
  });

  const json =
    (status: number, value: unknown): Answer =>
    (res) =>
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));

  /** What the client makes of `answer` to `route`, with a client of short bounds. */
  async function faultOf(
    route: keyof typeof REGISTRATION_ROUTES,
    answer: Answer,
    call: (client: RegistrationClient) => Promise<unknown>,
  ): Promise<RegistrationClientError> {
    answers.set(REGISTRATION_ROUTES[route].path, answer);
    const client = createRegistrationClient({ url, timeoutMs: 300 });
    try {
      return await refusal(call(client));
    } finally {
      await client.close();
    }
  }

  const att = attest(PHONE, RECIPIENT, INDEPENDENT_PROVER.secretKey, T0);
  const confirm = (c: RegistrationClient): Promise<unknown> =>
    c.confirm({ csi: '+44 20 7946 0018', code: '123456', key: RECIPIENT.publicKey });
  const publish = (c: RegistrationClient): Promise<unknown> =>
    c.publishMapping(mappingOf({ att, iat: T0 }));

  it('refuses an attestation for another key or CSI, and one that does not decode', async () => {
    const forOther = attest(PHONE, OTHER_RECIPIENT, INDEPENDENT_PROVER.secretKey, T0);
    const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');
    const other = await faultOf(
      'confirm',
      json(200, { attestation: b64(encodeAttestation(forOther)), prover: '', nbf: 0, exp: 0 }),
      confirm,
    );
    expect(other).toMatchObject({
      code: 'ERR_API_RESPONSE',
      message: 'the DP returned an attestation for another CSI or key',
    });
    const otherCsi = attest('tel:+442079460019', RECIPIENT, INDEPENDENT_PROVER.secretKey, T0);
    expect(
      await faultOf(
        'confirm',
        json(200, { attestation: b64(encodeAttestation(otherCsi)) }),
        confirm,
      ),
    ).toMatchObject({ message: 'the DP returned an attestation for another CSI or key' });
    expect(await faultOf('confirm', json(200, { attestation: 'AAAA' }), confirm)).toMatchObject({
      code: 'ERR_API_RESPONSE',
      message: 'the DP returned an attestation that does not decode',
    });
    expect(await faultOf('confirm', json(200, { attestation: 'a+b=' }), confirm)).toMatchObject({
      message: "the DP's response has no base64url attestation",
    });
  });

  it('refuses a success of the wrong shape', async () => {
    const cases: Array<[Answer, string]> = [
      [json(201, { zone: PHONE_ZONE, name: PHONE_NAME }), "the DP's response has no serial"],
      [
        json(201, { zone: PHONE_ZONE, name: PHONE_NAME, serial: -1 }),
        "the DP's response has no serial",
      ],
      [json(201, { zone: 7, name: PHONE_NAME, serial: 1 }), "the DP's response has no zone"],
      [json(201, [PHONE_ZONE]), `${url}/v1/mappings answered HTTP 201 without a JSON object`],
      [
        (res) => res.writeHead(201, { 'content-type': 'text/plain' }).end('created'),
        `${url}/v1/mappings answered HTTP 201 without a JSON object`,
      ],
      [
        (res) => res.writeHead(502, { 'content-type': 'text/html' }).end('<h1>proxy</h1>'),
        `${url}/v1/mappings answered HTTP 502`,
      ],
      [json(500, { error: 'internal' }), `${url}/v1/mappings answered HTTP 500`],
    ];
    for (const [answer, message] of cases) {
      expect(await faultOf('mappings', answer, publish)).toMatchObject({
        code: 'ERR_API_RESPONSE',
        message,
      });
    }
    expect(
      await faultOf(
        'prove',
        json(202, { csi: '+44 20 7946 0018', expiresAt: 1, channel: 'x' }),
        (c) => c.prove(PHONE),
      ),
    ).toMatchObject({ message: "the DP's response has no canonical csi" });
  });

  it('stops reading a response larger than its bound', async () => {
    const big = json(201, {
      zone: 'x'.repeat(MAX_REGISTRATION_RESPONSE_OCTETS),
      name: '',
      serial: 1,
    });
    const error = await faultOf('mappings', big, publish);
    expect(error.code).toBe('ERR_API_RESPONSE');
    expect(error.message).toBe(
      `${url}/v1/mappings answered more than ${MAX_REGISTRATION_RESPONSE_OCTETS} octets`,
    );
  });

  it('opens at most REGISTRATION_CLIENT_CONNECTIONS connections, below the API’s share per client', async () => {
    expect(REGISTRATION_CLIENT_CONNECTIONS).toBeLessThan(API_CONNECTIONS_PER_CLIENT);
    const connected = sockets.size;
    let seen = 0;
    answers.set(REGISTRATION_ROUTES.mappings.path, (res) => {
      seen = Math.max(seen, sockets.size - connected);
      setTimeout(() => json(201, { zone: PHONE_ZONE, name: PHONE_NAME, serial: 1 })(res), 20);
    });
    const client = createRegistrationClient({ url });
    try {
      const answered = await Promise.all(Array.from({ length: 48 }, () => publish(client)));
      expect(answered).toHaveLength(48);
      expect(seen).toBeGreaterThan(1);
      expect(seen).toBeLessThanOrEqual(REGISTRATION_CLIENT_CONNECTIONS);
    } finally {
      await client.close();
    }
  });

  it('waits longer than the API takes to refuse a slow request', () => {
    // The API answers 408 once the headers or the body are late; the client waits for that.
    expect(REGISTRATION_CLIENT_TIMEOUT_MS).toBeGreaterThan(
      Math.max(HEADERS_TIMEOUT_MS, BODY_TIMEOUT_MS),
    );
  });

  it('gives up on a server that does not answer in time', async () => {
    const error = await faultOf(
      'removals',
      () => undefined,
      (c) => c.remove(createRemoval({ csi: PHONE, seq: 1, iat: T0 }, RECIPIENT.secretKey)),
    );
    expect(error.code).toBe('ERR_API_TIMEOUT');
  });
});
