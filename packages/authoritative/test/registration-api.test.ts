import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import {
  attestsCsi,
  createLocalCa,
  decodeAttestation,
  issueServerCertificate,
  decodeMapping,
  encodeCbor,
  encodeMapping,
  keyPairFromSeed,
  sign,
  signingInput,
  type UnsignedMapping,
} from '@mimi-discovery/common';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createOutboxChannel } from '../src/registration/channels.js';
import {
  MAX_API_CONNECTIONS,
  MAX_BODY_OCTETS,
  startRegistrationApi,
  type Scheduler,
} from '../src/registration/registration-api.js';
import type { RegistrationApi } from '../src/registration/registration-api.js';
import { createRegistrar } from '../src/registration/registration.js';
import {
  CSIP,
  DAY,
  EMAIL,
  EMAIL_ZONE,
  INDEPENDENT_PROVER,
  OTHER_RECIPIENT,
  PHONE,
  PHONE_NAME,
  PHONE_ZONE,
  PROVER_SEED,
  RECIPIENT,
  STRANGER,
  T0,
  attest,
  b64,
  createFixture,
  held,
  lastCode,
  mappingBytes,
  removalBytes,
  revocationBytes,
  snapshot,
  unb64,
  type Fixture,
  type HeldAttestation,
} from './registration-fixture.js';

const HEADERS_TIMEOUT_MS = 1111;
const BODY_TIMEOUT_MS = 2222;

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

interface PostOptions {
  method?: string;
  contentType?: string | null;
  raw?: string | Buffer;
  chunked?: boolean;
}

/** One request on its own connection, as a client library would send it. */
function post(
  url: string,
  path: string,
  json: unknown,
  options: PostOptions = {},
  tls?: { ca: string },
): Promise<Reply> {
  const payload = options.raw ?? JSON.stringify(json);
  const headers: Record<string, string> = {};
  if (options.contentType !== null) {
    headers['content-type'] = options.contentType ?? 'application/json';
  }
  if (!options.chunked) headers['content-length'] = String(Buffer.byteLength(payload));
  return new Promise((resolve, reject) => {
    const req = (tls ? httpsRequest : httpRequest)(
      `${url}${path}`,
      { method: options.method ?? 'POST', headers, agent: false, ...(tls ? { ca: tls.ca } : {}) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>,
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** A manual scheduler: timers fire only when the test says so. */
function manualTimers(): {
  schedule: Scheduler;
  pending(ms: number): number;
  fire(ms: number): void;
} {
  const timers: { ms: number; fn: () => void; live: boolean }[] = [];
  return {
    schedule(ms, fn) {
      const t = { ms, fn, live: true };
      timers.push(t);
      return () => {
        t.live = false;
      };
    },
    pending: (ms) => timers.filter((t) => t.live && t.ms === ms).length,
    fire(ms) {
      for (const t of timers.filter((x) => x.live && x.ms === ms)) {
        t.live = false;
        t.fn();
      }
    },
  };
}

/** Event-loop turns until `condition` holds; bounded, never sleeps. */
async function until(condition: () => boolean, turns = 10_000): Promise<void> {
  for (let i = 0; i < turns && !condition(); i++) {
    await new Promise((resolve) => setImmediate(resolve));
  }
  expect(condition()).toBe(true);
}

/** Everything the server sends on a raw socket until it closes. */
function collect(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

function parseRaw(text: string): { status: number; body: Record<string, unknown> } {
  const [head = '', body = ''] = text.split('\r\n\r\n');
  return {
    status: Number(head.split(' ')[1]),
    body: JSON.parse(body) as Record<string, unknown>,
  };
}

function errorOf(reply: Reply | { body: Record<string, unknown> }): {
  code: string;
  message: string;
  detail?: string;
} {
  return reply.body['error'] as { code: string; message: string; detail?: string };
}

describe('registration API over HTTP', () => {
  let fixture: Fixture;
  let api: RegistrationApi;
  let timers: ReturnType<typeof manualTimers>;

  beforeEach(async () => {
    fixture = await createFixture();
    timers = manualTimers();
    const registrar = createRegistrar({
      store: fixture.store,
      channels: { fallback: createOutboxChannel(fixture.outbox) },
      now: () => fixture.clock.now,
    });
    api = await startRegistrationApi(
      { port: 0, headersTimeoutMs: HEADERS_TIMEOUT_MS, bodyTimeoutMs: BODY_TIMEOUT_MS },
      registrar,
      { schedule: timers.schedule },
    );
  });

  afterEach(async () => {
    await api.close();
    await fixture.cleanup();
  });

  /** prove → code from the outbox → confirm: the attestation the DP issues. */
  async function proveAndConfirm(typed: string, recipient = RECIPIENT): Promise<HeldAttestation> {
    const proved = await post(api.url, '/v1/prove', { csi: typed });
    expect(proved.status).toBe(202);
    const csi = proved.body['csi'] as string;
    const confirmed = await post(api.url, '/v1/confirm', {
      csi: typed,
      code: lastCode(fixture.outbox, csi),
      key: b64(recipient.publicKey),
    });
    expect(confirmed.status).toBe(200);
    return held(decodeAttestation(unb64(confirmed.body['attestation'] as string)), csi);
  }

  /** Publishes a mapping of `csi` (the request names it: a mapping does not carry it). */
  const publish = (bytes: Uint8Array, csi: string = PHONE): Promise<Reply> =>
    post(api.url, '/v1/mappings', { csi, mapping: b64(bytes) });

  const storedMappings = (origin = PHONE_ZONE, name = PHONE_NAME) =>
    fixture.store.readRRset(origin, name, 'MAP').map((r) => decodeMapping(r.data as Uint8Array));

  /** Runs `action` and checks that the phone zone is exactly as before. */
  async function unchanged<T>(action: () => Promise<T>): Promise<T> {
    const before = snapshot(fixture.store, PHONE_ZONE);
    const result = await action();
    expect(snapshot(fixture.store, PHONE_ZONE)).toEqual(before);
    return result;
  }

  it('proves a phone number, confirms the code and publishes a mapping', async () => {
    const proved = await post(api.url, '/v1/prove', { csi: '+44 20 7946 0018' });
    expect(proved).toMatchObject({
      status: 202,
      body: { csi: PHONE, expiresAt: T0 + 600, channel: 'outbox' },
    });
    const code = lastCode(fixture.outbox, PHONE);
    expect(code).toMatch(/^\d{6}$/);

    const confirmed = await post(api.url, '/v1/confirm', {
      csi: '+44 20 7946 0018',
      code,
      key: b64(RECIPIENT.publicKey),
    });
    const prover = keyPairFromSeed(PROVER_SEED).publicKey;
    expect(confirmed).toMatchObject({
      status: 200,
      body: { prover: b64(prover), nbf: T0, exp: T0 + 365 * DAY },
    });
    const encoded = unb64(confirmed.body['attestation'] as string);
    const att = held(decodeAttestation(encoded), PHONE);
    expect(att).toMatchObject({ v: 2, key: RECIPIENT.publicKey, prover });
    // The attestation does not spell the number; its signature covers it.
    expect(attestsCsi(att, PHONE)).toBe(true);
    expect(Buffer.from(encoded).toString('latin1')).not.toContain('442079460018');

    fixture.clock.now += 60;
    const msps = [
      { provider: 'chat.example', tags: ['primary', 'mls'] },
      { provider: 'msg.example', tags: [], uri: 'im:alice@msg.example' },
    ];
    const bytes = mappingBytes({ att, msps, iat: fixture.clock.now });
    const published = await publish(bytes);
    expect(published).toMatchObject({
      status: 201,
      body: { zone: PHONE_ZONE, name: PHONE_NAME },
    });
    expect(published.body['serial']).toBe(fixture.store.zoneInfo(PHONE_ZONE)?.serial);
    const stored = fixture.store.readRRset(PHONE_ZONE, PHONE_NAME, 'MAP');
    expect(stored.map((r) => r.data)).toEqual([bytes]);
    expect(stored[0]?.ttl).toBe(300);
    // R2: the tags come back as published.
    expect(storedMappings()[0]?.msps).toEqual(msps);
  });

  it('proves an email address through the same flow', async () => {
    const att = await proveAndConfirm('Alice@Example.COM');
    expect(att.csi).toBe(EMAIL);
    expect(attestsCsi(att, EMAIL)).toBe(true);
    const published = await publish(mappingBytes({ att, iat: T0 }), 'Alice@Example.COM');
    expect(published.status).toBe(201);
    expect(published.body['zone']).toBe(EMAIL_ZONE);
  });

  it('accepts a mapping attested by an independent prover listed at the apex', async () => {
    const att = attest(PHONE, RECIPIENT, INDEPENDENT_PROVER.secretKey, T0);
    expect((await publish(mappingBytes({ att, iat: T0 }))).status).toBe(201);
  });

  it('R1: refuses a mapping whose attestation is not by an AUTHKEY prover', async () => {
    const att = attest(PHONE, RECIPIENT, STRANGER.secretKey, T0);
    const reply = await unchanged(() => publish(mappingBytes({ att, iat: T0 })));
    expect(reply.status).toBe(403);
    expect(errorOf(reply).code).toBe('ERR_PROVER_NOT_AUTHORIZED');
  });

  it('R1: refuses a mapping signed by a key other than the attested one', async () => {
    const att = await proveAndConfirm('+442079460018');
    const unsigned: UnsignedMapping = {
      v: 2,
      msps: [{ provider: 'evil.example', tags: [] }],
      key: OTHER_RECIPIENT.publicKey,
      seq: 1,
      iat: T0,
      exp: T0 + DAY,
      new: false,
      att,
    };
    // The other key signs a mapping that carries the recipient's attestation…
    const foreign = encodeMapping({
      ...unsigned,
      sig: sign(signingInput('mapping', unsigned, PHONE), OTHER_RECIPIENT.secretKey),
    });
    const first = await unchanged(() => publish(foreign));
    expect(first.status).toBe(400);
    expect(errorOf(first)).toMatchObject({ code: 'ERR_MAPPING_INVALID', detail: 'csi-mismatch' });
    // …or claims the attested key but is signed by another.
    const claimed = { ...unsigned, key: RECIPIENT.publicKey };
    const forged = encodeMapping({
      ...claimed,
      sig: sign(signingInput('mapping', claimed, PHONE), OTHER_RECIPIENT.secretKey),
    });
    const second = await unchanged(() => publish(forged));
    expect(errorOf(second)).toMatchObject({
      code: 'ERR_MAPPING_INVALID',
      detail: 'bad-signature',
    });
  });

  it('refuses a mapping whose signatures do not cover the CSI of the request', async () => {
    const att = await proveAndConfirm('+442079460018');
    const bytes = mappingBytes({ att, iat: T0 });
    // The same valid mapping, asked for a neighbouring number in the same zone: a publisher
    // copying another CSI's mapping gets nothing published.
    const copied = await unchanged(() => publish(bytes, 'tel:+442079460019'));
    expect(copied.status).toBe(400);
    expect(errorOf(copied)).toMatchObject({
      code: 'ERR_MAPPING_INVALID',
      detail: 'bad-signature',
    });
    expect(errorOf(copied).message).toContain('mapping.att.sig');
    // A mapping signed by the recipient for another CSI around its genuine attestation (signed
    // by hand: createMapping refuses to make it).
    const genuine = decodeMapping(bytes);
    const other = encodeMapping({
      ...genuine,
      sig: sign(signingInput('mapping', genuine, 'tel:+442079460019'), RECIPIENT.secretKey),
    });
    const mixed = await unchanged(() => publish(other));
    expect(errorOf(mixed)).toMatchObject({ code: 'ERR_MAPPING_INVALID', detail: 'bad-signature' });
    expect(errorOf(mixed).message).toContain('mapping.sig');
    expect((await publish(bytes)).status).toBe(201);
  });

  it('refuses a version-1 mapping with a clear reason', async () => {
    const att = await proveAndConfirm('+442079460018');
    const { sig, ...fields } = decodeMapping(mappingBytes({ att, iat: T0 }));
    // What version 1 looked like: v 1 and the CSI in clear, in the mapping and its attestation.
    const v1 = encodeCbor({
      ...fields,
      v: 1,
      csi: PHONE,
      msps: fields.msps.map((m) => ({ ...m, tags: [...m.tags] })),
      att: { ...fields.att, v: 1, csi: PHONE },
      sig,
    });
    const reply = await unchanged(() => publish(v1));
    expect(reply.status).toBe(400);
    expect(errorOf(reply)).toMatchObject({
      code: 'ERR_MAPPING_INVALID',
      detail: 'unsupported-version',
    });
    expect(errorOf(reply).message).toContain('version 1');
  });

  it('R5: accepts a mapping that lists no MSP (opt-out)', async () => {
    const att = await proveAndConfirm('+442079460018');
    expect((await publish(mappingBytes({ att, msps: [], iat: T0 }))).status).toBe(201);
    expect(storedMappings()[0]?.msps).toEqual([]);
  });

  it('R9: a removal by the recipient deletes its MAP', async () => {
    const att = await proveAndConfirm('+442079460018');
    await publish(mappingBytes({ att, seq: 3, iat: T0 }));
    const reply = await post(api.url, '/v1/removals', {
      removal: b64(removalBytes(PHONE, RECIPIENT, 3, T0 + 10)),
    });
    expect(reply).toMatchObject({ status: 200, body: { zone: PHONE_ZONE, name: PHONE_NAME } });
    expect(fixture.store.readRRset(PHONE_ZONE, PHONE_NAME, 'MAP')).toEqual([]);
  });

  it('R10: refuses a removal signed by another key, and one below the stored seq', async () => {
    const att = await proveAndConfirm('+442079460018');
    await publish(mappingBytes({ att, seq: 3, iat: T0 }));
    const other = await unchanged(() =>
      post(api.url, '/v1/removals', {
        removal: b64(removalBytes(PHONE, OTHER_RECIPIENT, 9, T0)),
      }),
    );
    expect(other.status).toBe(404);
    expect(errorOf(other).code).toBe('ERR_NOT_FOUND');
    const stale = await unchanged(() =>
      post(api.url, '/v1/removals', { removal: b64(removalBytes(PHONE, RECIPIENT, 2, T0)) }),
    );
    expect(stale.status).toBe(409);
    expect(errorOf(stale).code).toBe('ERR_STALE_SEQ');
  });

  it('R10: a CSIP revocation removes every mapping attested before its time', async () => {
    const first = await proveAndConfirm('+442079460018', RECIPIENT);
    await publish(mappingBytes({ att: first, iat: T0 }));
    fixture.clock.now += 100;
    const second = await proveAndConfirm('+442079460018', OTHER_RECIPIENT);
    await publish(mappingBytes({ att: second, recipient: OTHER_RECIPIENT, iat: T0 + 100 }));
    expect(storedMappings()).toHaveLength(2);

    const partial = await post(api.url, '/v1/revocations', {
      revocation: b64(revocationBytes(PHONE, CSIP, T0 + 50, T0 + 100)),
    });
    expect(partial).toMatchObject({ status: 200, body: { removed: 1 } });
    expect(storedMappings().map((m) => m.key)).toEqual([OTHER_RECIPIENT.publicKey]);

    const all = await post(api.url, '/v1/revocations', {
      revocation: b64(revocationBytes(PHONE, CSIP, T0 + 101, T0 + 100)),
    });
    expect(all).toMatchObject({ status: 200, body: { removed: 1 } });
    expect(storedMappings()).toEqual([]);
  });

  it('R10: refuses a revocation by a key that is not a CSIP of the range', async () => {
    const att = await proveAndConfirm('+442079460018');
    await publish(mappingBytes({ att, iat: T0 }));
    const reply = await unchanged(() =>
      post(api.url, '/v1/revocations', {
        revocation: b64(revocationBytes(PHONE, STRANGER, T0 + 1, T0 + 1)),
      }),
    );
    expect(reply.status).toBe(403);
    expect(errorOf(reply).code).toBe('ERR_CSIP_NOT_AUTHORIZED');
  });

  it('the "new" bit de-lists holders attested earlier', async () => {
    const old = await proveAndConfirm('+442079460018', RECIPIENT);
    await publish(mappingBytes({ att: old, iat: T0 }));
    fixture.clock.now += 3600;
    const fresh = await proveAndConfirm('+442079460018', OTHER_RECIPIENT);
    const reply = await publish(
      mappingBytes({ att: fresh, recipient: OTHER_RECIPIENT, iat: fixture.clock.now, new: true }),
    );
    expect(reply.status).toBe(201);
    expect(storedMappings().map((m) => m.key)).toEqual([OTHER_RECIPIENT.publicKey]);
    // The earlier holder cannot come back.
    const back = await unchanged(() =>
      publish(mappingBytes({ att: old, seq: 2, iat: fixture.clock.now })),
    );
    expect(back.status).toBe(409);
    expect(errorOf(back).code).toBe('ERR_SUPERSEDED');
  });

  it('refuses a mapping whose seq is not above the stored one', async () => {
    const att = await proveAndConfirm('+442079460018');
    expect((await publish(mappingBytes({ att, seq: 2, iat: T0 }))).status).toBe(201);
    for (const seq of [2, 1]) {
      const reply = await unchanged(() =>
        publish(mappingBytes({ att, seq, iat: T0, msps: [{ provider: 'x.example', tags: [] }] })),
      );
      expect(reply.status).toBe(409);
      expect(errorOf(reply).code).toBe('ERR_STALE_SEQ');
    }
    expect((await publish(mappingBytes({ att, seq: 3, iat: T0 }))).status).toBe(201);
    expect(storedMappings().map((m) => m.seq)).toEqual([3]);
  });

  it('lets a code expire after ten minutes', async () => {
    await post(api.url, '/v1/prove', { csi: '+442079460018' });
    fixture.clock.now += 600;
    const reply = await post(api.url, '/v1/confirm', {
      csi: '+442079460018',
      code: lastCode(fixture.outbox, PHONE),
      key: b64(RECIPIENT.publicKey),
    });
    expect(reply.status).toBe(403);
    expect(errorOf(reply).code).toBe('ERR_CODE_EXPIRED');
  });

  it('discards a code after five wrong attempts', async () => {
    await post(api.url, '/v1/prove', { csi: '+442079460018' });
    const code = lastCode(fixture.outbox, PHONE);
    const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, '0');
    const confirm = (c: string) =>
      post(api.url, '/v1/confirm', { csi: PHONE, code: c, key: b64(RECIPIENT.publicKey) });
    for (let i = 0; i < 4; i++) {
      const reply = await confirm(wrong);
      expect(reply.status).toBe(403);
      expect(errorOf(reply).code).toBe('ERR_CODE_INVALID');
    }
    const fifth = await confirm(wrong);
    expect(fifth.status).toBe(429);
    expect(errorOf(fifth).code).toBe('ERR_TOO_MANY_ATTEMPTS');
    // The right code no longer helps.
    expect(errorOf(await confirm(code)).code).toBe('ERR_CODE_INVALID');
  });

  it('sends at most five codes to one CSI per hour', async () => {
    for (let i = 0; i < 5; i++) {
      expect((await post(api.url, '/v1/prove', { csi: '+442079460018' })).status).toBe(202);
    }
    const sixth = await post(api.url, '/v1/prove', { csi: '+44 20 7946 0018' });
    expect(sixth.status).toBe(429);
    expect(errorOf(sixth)).toMatchObject({ code: 'ERR_RATE_LIMITED', detail: 'csi' });
    expect(sixth.headers['retry-after']).toBe('720');
    // Another CSI is not affected; the first recovers one send after 12 minutes.
    expect((await post(api.url, '/v1/prove', { csi: 'alice@example.com' })).status).toBe(202);
    fixture.clock.now += 720;
    expect((await post(api.url, '/v1/prove', { csi: '+442079460018' })).status).toBe(202);
  });

  it('limits one client to 60 requests a minute', async () => {
    const junk = { removal: b64(new Uint8Array([0xa0])) };
    for (let i = 0; i < 60; i++) {
      const reply = await post(api.url, '/v1/removals', junk);
      expect(errorOf(reply).code).toBe('ERR_REMOVAL_INVALID');
    }
    const limited = await post(api.url, '/v1/removals', junk);
    expect(limited.status).toBe(429);
    expect(errorOf(limited)).toMatchObject({ code: 'ERR_RATE_LIMITED', detail: 'client' });
    expect(limited.headers['retry-after']).toBe('1');
    fixture.clock.now += 1;
    expect(errorOf(await post(api.url, '/v1/removals', junk)).code).toBe('ERR_REMOVAL_INVALID');
  });

  describe('requests it cannot read get a JSON error and change nothing', () => {
    it.each([
      ['junk JSON', '/v1/prove', { raw: '{"csi": ' }, 400, 'ERR_BAD_JSON'],
      ['a JSON array', '/v1/prove', { raw: '["+442079460018"]' }, 400, 'ERR_BAD_REQUEST'],
      [
        'the wrong content type',
        '/v1/prove',
        { contentType: 'text/plain' },
        415,
        'ERR_UNSUPPORTED_MEDIA_TYPE',
      ],
      ['no content type', '/v1/prove', { contentType: null }, 415, 'ERR_UNSUPPORTED_MEDIA_TYPE'],
      [
        'another charset',
        '/v1/prove',
        { contentType: 'application/json; charset=latin1' },
        415,
        'ERR_UNSUPPORTED_MEDIA_TYPE',
      ],
      ['an unknown route', '/v1/nothing', {}, 404, 'ERR_ROUTE_NOT_FOUND'],
      ['the wrong method', '/v1/prove', { method: 'PUT' }, 405, 'ERR_METHOD_NOT_ALLOWED'],
      ['invalid UTF-8', '/v1/prove', { raw: Buffer.from([0x7b, 0xff, 0x7d]) }, 400, 'ERR_BAD_JSON'],
    ] as const)('%s', async (_name, path, options, status, code) => {
      const reply = await unchanged(() =>
        post(api.url, path, { csi: '+442079460018' }, options as PostOptions),
      );
      expect(reply.status).toBe(status);
      expect(reply.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(errorOf(reply).code).toBe(code);
      if (status === 405) expect(reply.headers['allow']).toBe('POST');
    });

    it('an unknown field, named in the error', async () => {
      const reply = await unchanged(() =>
        post(api.url, '/v1/prove', { csi: '+442079460018', phone: 'x' }),
      );
      expect(reply.status).toBe(400);
      expect(errorOf(reply)).toMatchObject({ code: 'ERR_BAD_REQUEST', detail: 'phone' });
      expect(errorOf(reply).message).toContain('"phone"');
    });

    it('a missing field or a byte string that is not base64url', async () => {
      const missing = await post(api.url, '/v1/confirm', { csi: PHONE, code: '123456' });
      expect(errorOf(missing)).toMatchObject({ code: 'ERR_BAD_REQUEST', detail: 'key' });
      const padded = await post(api.url, '/v1/mappings', { csi: PHONE, mapping: 'AAA=' });
      expect(errorOf(padded)).toMatchObject({ code: 'ERR_BAD_REQUEST', detail: 'mapping' });
      const typed = await post(api.url, '/v1/prove', { csi: 442079460018 });
      expect(errorOf(typed)).toMatchObject({ code: 'ERR_BAD_REQUEST', detail: 'csi' });
    });

    it('a body over the limit, declared or streamed', async () => {
      const big = JSON.stringify({ mapping: 'A'.repeat(MAX_BODY_OCTETS) });
      const declared = await unchanged(() => post(api.url, '/v1/mappings', null, { raw: big }));
      expect(declared.status).toBe(413);
      expect(errorOf(declared).code).toBe('ERR_BODY_TOO_LARGE');
      const streamed = await unchanged(() =>
        post(api.url, '/v1/mappings', null, { raw: big, chunked: true }),
      );
      expect(streamed.status).toBe(413);
      expect(errorOf(streamed).code).toBe('ERR_BODY_TOO_LARGE');
    });

    it('an invalid CSI, with the CsiError code as detail', async () => {
      const reply = await unchanged(() => post(api.url, '/v1/prove', { csi: '020 7946 0018' }));
      expect(reply.status).toBe(400);
      expect(errorOf(reply)).toMatchObject({
        code: 'ERR_CSI_INVALID',
        detail: 'ERR_CSI_PHONE_NO_COUNTRY',
      });
      const elsewhere = await post(api.url, '/v1/prove', { csi: '+1 202 555 0100' });
      expect(elsewhere.status).toBe(404);
      expect(errorOf(elsewhere).code).toBe('ERR_NOT_AUTHORITATIVE');
    });

    it('a client that sends its body too slowly', async () => {
      const before = snapshot(fixture.store, PHONE_ZONE);
      const socket = connect(api.port, '127.0.0.1');
      const received = collect(socket);
      socket.write(
        'POST /v1/prove HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
          'Content-Length: 40\r\n\r\n{"csi": "+44',
      );
      await until(() => timers.pending(BODY_TIMEOUT_MS) === 1);
      timers.fire(BODY_TIMEOUT_MS);
      const reply = parseRaw(await received);
      expect(reply.status).toBe(408);
      expect(errorOf(reply).code).toBe('ERR_TIMEOUT');
      expect(snapshot(fixture.store, PHONE_ZONE)).toEqual(before);
    });

    it('a client that sends its headers too slowly', async () => {
      const socket = connect(api.port, '127.0.0.1');
      const received = collect(socket);
      socket.write('POST /v1/prove HTTP/1.1\r\nHost: 127.0.0.1\r\n');
      await until(() => timers.pending(HEADERS_TIMEOUT_MS) === 1);
      timers.fire(HEADERS_TIMEOUT_MS);
      const reply = parseRaw(await received);
      expect(reply.status).toBe(408);
      expect(errorOf(reply).code).toBe('ERR_TIMEOUT');
    });

    it('a request that is not HTTP', async () => {
      const socket = connect(api.port, '127.0.0.1');
      const received = collect(socket);
      socket.write('HELLO\r\n\r\n');
      const reply = parseRaw(await received);
      expect(reply.status).toBe(400);
      expect(errorOf(reply).code).toBe('ERR_BAD_REQUEST');
    });
  });
});

describe('registration API connection bound', () => {
  it(`holds at most maxConnections (default ${MAX_API_CONNECTIONS}) and refuses the next`, async () => {
    const fixture = await createFixture();
    const registrar = createRegistrar({
      store: fixture.store,
      channels: { fallback: createOutboxChannel(fixture.outbox) },
      now: () => fixture.clock.now,
    });
    const api = await startRegistrationApi({ port: 0, maxConnections: 2 }, registrar);
    const port = Number(new URL(api.url).port);
    const open = (): Promise<Socket> =>
      new Promise((resolve, reject) => {
        const socket = connect(port, '127.0.0.1', () => resolve(socket));
        socket.once('error', reject);
      });
    const held = [await open(), await open()];
    try {
      await new Promise((r) => setTimeout(r, 50));
      const third = await open();
      const closed = await new Promise<boolean>((resolve) => {
        third.once('close', () => resolve(true));
        // Nothing is sent: only the bound can close it before the 10 s headers timeout.
        setTimeout(() => resolve(false), 2000).unref();
      });
      expect(closed).toBe(true);
    } finally {
      for (const s of held) s.destroy();
      await api.close();
      await fixture.cleanup();
    }
  });
});

describe('registration API connections per client', () => {
  // Attackers bind their sockets to other addresses of 127.0.0.0/8 (all of it is loopback on
  // Linux), so the API sees them as other clients than the one at 127.0.0.1.
  const ATTACKERS = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6', '127.0.0.7'];
  /** Request headers that never end: a slow client holding its connection. */
  const SLOW_HEADERS = 'POST /v1/prove HTTP/1.1\r\nHost: 127.0.0.1\r\n';
  let fixture: Fixture;
  let api: RegistrationApi;
  const sockets: Socket[] = [];

  const start = async (options: Partial<Parameters<typeof startRegistrationApi>[0]> = {}) => {
    const registrar = createRegistrar({
      store: fixture.store,
      channels: { fallback: createOutboxChannel(fixture.outbox) },
      now: () => fixture.clock.now,
    });
    api = await startRegistrationApi(
      { port: 0, maxConnections: 16, connectionsPerClient: 4, ...options },
      registrar,
    );
  };

  /** A connection from `from` that sends `text`; `closed` tells when the API closed it. */
  const slow = (from: string, text = SLOW_HEADERS) => {
    const socket = connect({ host: '127.0.0.1', port: api.port, localAddress: from });
    sockets.push(socket);
    socket.on('error', () => undefined);
    socket.on('connect', () => socket.write(text));
    let isClosed = false;
    const closed = new Promise<void>((resolve) =>
      socket.once('close', () => {
        isClosed = true;
        resolve();
      }),
    );
    return { socket, closed, isClosed: () => isClosed };
  };

  /** Every connection the API has decided on since it started. */
  const decided = (): number => {
    const s = api.connectionStats();
    return s.admitted + s.refused.client_limit + s.refused.capacity;
  };

  /** Polls every 10 ms, for at most 5 s. */
  const settled = async (condition: () => boolean): Promise<void> => {
    for (let i = 0; i < 500 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
    expect(condition()).toBe(true);
  };

  beforeEach(async () => {
    fixture = await createFixture();
  });

  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.destroy();
    await api?.close();
    await fixture.cleanup();
  });

  it('closes the connections of one client past its share at once, and answers another client', async () => {
    await start();
    const held = Array.from({ length: 10 }, () => slow('127.0.0.2'));
    await settled(() => decided() === 10);
    // Refused before the 10 s headers deadline could close any of them.
    await settled(() => held.filter((c) => c.isClosed()).length === 6);
    expect(api.connectionStats()).toMatchObject({ open: 4, refused: { client_limit: 6 } });
    const reply = await post(api.url, '/v1/prove', { csi: 'not a csi' });
    expect(reply.status).toBe(400);
    expect(reply.body).toMatchObject({ error: { code: 'ERR_CSI_INVALID' } });
  });

  it('answers a client while attackers whose shares add up past the cap hold slow connections', async () => {
    await start();
    for (const from of ATTACKERS) for (let i = 0; i < 4; i++) slow(from);
    await settled(() => decided() === 24);
    expect(api.connectionStats().open).toBe(16);
    const reply = await post(api.url, '/v1/prove', { csi: 'not a csi' });
    expect(reply.status).toBe(400);
    expect(api.connectionStats().open).toBeLessThanOrEqual(16);
    expect(api.connectionStats().closed.evicted).toBeGreaterThanOrEqual(ATTACKERS.length + 1);
  });

  it('answers 408 and closes a client whose headers trickle in, at the headers deadline', async () => {
    await start({ headersTimeoutMs: 500 });
    const dripper = slow('127.0.0.2', '');
    let response = '';
    dripper.socket.on('data', (chunk: Buffer) => (response += chunk.toString('latin1')));
    const text = `${SLOW_HEADERS}X-Pad: ${'p'.repeat(100)}\r\n\r\n`;
    const started = performance.now();
    let sent = 0;
    // At most the whole request (about 7 s at this pace); the API cuts it long before.
    for (; sent < text.length && !dripper.isClosed(); sent++) {
      dripper.socket.write(text.slice(sent, sent + 1));
      await new Promise((r) => setTimeout(r, 50));
    }
    await dripper.closed;
    const after = performance.now() - started;
    expect(sent).toBeLessThan(text.length);
    expect(after).toBeGreaterThanOrEqual(450);
    expect(after).toBeLessThan(2000);
    expect(response).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('closes a client whose TLS handshake trickles in, at the headers deadline', async () => {
    const ca = await createLocalCa();
    const leaf = await issueServerCertificate(ca, { hostnames: [], ipAddresses: ['127.0.0.1'] });
    await start({ headersTimeoutMs: 500, tls: { cert: leaf.certPem, key: leaf.keyPem } });
    const dripper = slow('127.0.0.2', '');
    // A TLS record header announcing a 512-octet ClientHello, then its first octets.
    const hello = Buffer.concat([
      Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]),
      Buffer.alloc(64, 0x2a),
    ]);
    const started = performance.now();
    let sent = 0;
    for (; sent < hello.length && !dripper.isClosed(); sent++) {
      dripper.socket.write(hello.subarray(sent, sent + 1));
      await new Promise((r) => setTimeout(r, 50));
    }
    await dripper.closed;
    const after = performance.now() - started;
    expect(sent).toBeLessThan(hello.length);
    expect(after).toBeGreaterThanOrEqual(450);
    expect(after).toBeLessThan(2000);
  });
});

describe('registration API over HTTPS', () => {
  let openssl = true;
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
  } catch {
    openssl = false;
    console.warn('openssl is not installed: skipping the registration API over TLS test');
  }

  it.skipIf(!openssl)('serves the same routes over TLS', async () => {
    const fixture = await createFixture();
    const cert = join(fixture.dir, 'cert.pem');
    const key = join(fixture.dir, 'key.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    const registrar = createRegistrar({
      store: fixture.store,
      channels: { fallback: createOutboxChannel(fixture.outbox) },
      now: () => fixture.clock.now,
    });
    const api = await startRegistrationApi(
      { port: 0, tls: { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') } },
      registrar,
    );
    try {
      expect(api.url).toBe(`https://127.0.0.1:${api.port}`);
      const ca = readFileSync(cert, 'utf8');
      const reply = await post(api.url, '/v1/prove', { csi: '+442079460018' }, {}, { ca });
      expect(reply).toMatchObject({ status: 202, body: { csi: PHONE } });
    } finally {
      await api.close();
      await fixture.cleanup();
    }
  });
});
