import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import {
  MIN_TSIG_SECRET_OCTETS,
  TSIG_FUDGE_SECONDS,
  TSIG_MAX_UNSIGNED_MESSAGES,
  TsigError,
  appendUnsignedTsig,
  buildQuery,
  createTsigKey,
  createTsigKeyring,
  createTsigResponseVerifier,
  decodeMessage,
  decodeSecret,
  encodeMessage,
  formatTsigKeyFile,
  parseTsigKeyFile,
  respondError,
  signMessage,
  splitTsig,
  tsigRecordOctets,
  verifyRequest,
  type TsigAlgorithm,
  type TsigErrorCode,
  type TsigKey,
} from '../src/index.js';

// TSIG (RFC 8945): vectors made by real implementations — kdig and knotd 3.2.6 (Knot DNS) and
// dig 9.18.49 (BIND), captured as `vectors/tsig-interop.json` says — then the rules of §5.

interface Vectors {
  key: { name: string; secret: string };
  requests: { source: string; algorithm: TsigAlgorithm; time: number; wire: string }[];
  axfr: {
    source: string;
    algorithm: TsigAlgorithm;
    time: number;
    request: string;
    response: string[];
  };
}

const vectors = JSON.parse(
  readFileSync(new URL('./vectors/tsig-interop.json', import.meta.url), 'utf8'),
) as Vectors;

const hex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'hex'));
const keyOf = (algorithm: TsigAlgorithm, name = vectors.key.name): TsigKey =>
  createTsigKey(name, algorithm, decodeSecret(vectors.key.secret));

const NOW = 1_767_225_600;
const KEY = createTsigKey('xfr.example', 'hmac-sha256', new Uint8Array(32).fill(7));
const RING = createTsigKeyring([KEY]);

function query(): Uint8Array {
  const message = buildQuery('example', 'SOA', { id: 0x1234 });
  delete message.edns;
  return encodeMessage(message);
}

function tsigError(fn: () => unknown): TsigErrorCode {
  try {
    fn();
  } catch (error) {
    if (error instanceof TsigError) return error.code;
    throw error;
  }
  throw new Error('no error thrown');
}

describe('requests signed by kdig and dig', () => {
  it.each(vectors.requests)('verifies $source ($algorithm) at its time', (v) => {
    const ring = createTsigKeyring([keyOf(v.algorithm)]);
    const result = verifyRequest(hex(v.wire), ring, v.time);
    expect(result.kind).toBe('verified');
    if (result.kind !== 'verified') return;
    expect(result.key.name).toBe('xfr-key.example');
    // What is left decodes as the query, without the TSIG record and with its own id.
    const unsigned = decodeMessage(result.unsigned);
    expect(unsigned.additionals).toEqual([]);
    expect(unsigned.id).toBe(result.tsig.originalId);
    expect(unsigned.questions[0]?.type).toBe('SOA');
  });

  it.each(vectors.requests)('refuses $source ($algorithm) once its time is past', (v) => {
    const ring = createTsigKeyring([keyOf(v.algorithm)]);
    const late = verifyRequest(hex(v.wire), ring, v.time + TSIG_FUDGE_SECONDS + 1);
    expect(late).toMatchObject({ kind: 'failed', error: 'BADTIME' });
    // A right MAC out of time: the error answer is signed, so the key comes with it.
    expect(late.kind === 'failed' && late.key?.name).toBe('xfr-key.example');
    expect(verifyRequest(hex(v.wire), ring, v.time - TSIG_FUDGE_SECONDS - 1).kind).toBe('failed');
    expect(verifyRequest(hex(v.wire), ring, v.time + TSIG_FUDGE_SECONDS).kind).toBe('verified');
  });

  it.each(vectors.requests)('refuses $source with one octet changed, or another key', (v) => {
    const ring = createTsigKeyring([keyOf(v.algorithm)]);
    const wire = hex(v.wire);
    // The flags, then the last octet of the question's class. (Not the id: the MAC covers the
    // original id of the TSIG record, so that a forwarder may renumber, RFC 8945 §4.3.1.)
    for (const at of [2, 12 + 'example'.length + 5]) {
      const changed = Uint8Array.from(wire);
      changed[at] = (changed[at] as number) ^ 1;
      expect(verifyRequest(changed, ring, v.time)).toMatchObject({
        kind: 'failed',
        error: 'BADSIG',
      });
    }
    const other: TsigAlgorithm = v.algorithm === 'hmac-sha256' ? 'hmac-sha512' : 'hmac-sha256';
    expect(verifyRequest(wire, createTsigKeyring([keyOf(other)]), v.time)).toMatchObject({
      kind: 'failed',
      error: 'BADKEY',
    });
    expect(
      verifyRequest(wire, createTsigKeyring([keyOf(v.algorithm, 'other.example')]), v.time),
    ).toMatchObject({ kind: 'failed', error: 'BADKEY' });
    const wrongSecret = createTsigKey('xfr-key.example', v.algorithm, new Uint8Array(32).fill(1));
    expect(verifyRequest(wire, createTsigKeyring([wrongSecret]), v.time)).toMatchObject({
      kind: 'failed',
      error: 'BADSIG',
    });
  });

  it('leaves the bytes it is given as they were (a Buffer too)', () => {
    const v = vectors.requests[0];
    if (v === undefined) throw new Error('no vector');
    const wire = Buffer.from(v.wire, 'hex');
    verifyRequest(wire, createTsigKeyring([keyOf(v.algorithm)]), v.time);
    expect(wire.toString('hex')).toBe(v.wire);
  });
});

describe('an AXFR answered by knotd, every message signed (RFC 8945 §5.3.1)', () => {
  const key = keyOf(vectors.axfr.algorithm);
  const request = hex(vectors.axfr.request);
  const response = vectors.axfr.response.map(hex);

  it('is what knotd verified: our signed AXFR query', () => {
    expect(verifyRequest(request, createTsigKeyring([key]), vectors.axfr.time).kind).toBe(
      'verified',
    );
  });

  it('verifies each message over the MAC of the one before', () => {
    const split = splitTsig(request);
    if (split.kind !== 'signed') throw new Error('the request is not signed');
    const verifier = createTsigResponseVerifier(key, split.tsig.mac);
    expect(response.length).toBe(2);
    const kinds = response.map((m) => verifier.verify(m, vectors.axfr.time).kind);
    expect(kinds).toEqual(['verified', 'verified']);
    const records = response.flatMap((m) => {
      const s = splitTsig(m);
      return s.kind === 'signed' ? decodeMessage(s.unsigned).answers : [];
    });
    expect(records).toHaveLength(264);
    expect(records[0]?.type).toBe('SOA');
    expect(records.at(-1)?.type).toBe('SOA');
  });

  it('fails out of order, with a message left out, or over another request', () => {
    const split = splitTsig(request);
    if (split.kind !== 'signed') throw new Error('the request is not signed');
    const [first, second] = response as [Uint8Array, Uint8Array];
    const swapped = createTsigResponseVerifier(key, split.tsig.mac);
    expect(swapped.verify(second, vectors.axfr.time)).toMatchObject({ kind: 'failed' });
    const other = createTsigResponseVerifier(key, new Uint8Array(32));
    expect(other.verify(first, vectors.axfr.time)).toMatchObject({ kind: 'failed' });
    const late = createTsigResponseVerifier(key, split.tsig.mac);
    expect(late.verify(first, vectors.axfr.time + 301)).toMatchObject({
      kind: 'failed',
      reason: 'signed outside the time window',
    });
  });
});

describe('signing and verifying (RFC 8945 §4.3, §5.3)', () => {
  it('signs a request that verifies, and a response chained to it', () => {
    const signed = signMessage(query(), KEY, { now: NOW });
    const verified = verifyRequest(signed.wire, RING, NOW + 10);
    expect(verified.kind).toBe('verified');
    if (verified.kind !== 'verified') return;
    expect(Buffer.from(verified.unsigned).equals(Buffer.from(query()))).toBe(true);
    const answer = encodeMessage(respondError(decodeMessage(verified.unsigned), 'NOERROR'));
    const reply = signMessage(answer, KEY, { now: NOW + 10, requestMac: verified.tsig.mac });
    const verifier = createTsigResponseVerifier(KEY, signed.mac);
    expect(verifier.verify(reply.wire, NOW + 11)).toMatchObject({ kind: 'verified' });
  });

  it('covers unsigned messages between two signed ones, up to 99 in a row', () => {
    const request = signMessage(query(), KEY, { now: NOW });
    const answer = encodeMessage(respondError(decodeMessage(query()), 'NOERROR'));
    const build = (unsigned: number): Uint8Array[] => {
      const first = signMessage(answer, KEY, { now: NOW, requestMac: request.mac });
      const middle = Array.from({ length: unsigned }, () => answer);
      // RFC 8945 §5.3.1, computed here on its own: the next signed message's MAC covers the
      // prior MAC (with its length), every unsigned message since, itself, and the timers.
      const timers = Buffer.alloc(8);
      timers.writeUIntBE(NOW, 0, 6);
      timers.writeUInt16BE(TSIG_FUDGE_SECONDS, 6);
      const hmac = createHmac('sha256', KEY.secret);
      hmac.update(Buffer.from([0, first.mac.length]));
      hmac.update(first.mac);
      for (const m of middle) hmac.update(m);
      hmac.update(answer);
      hmac.update(timers);
      const last = signMessage(answer, KEY, { now: NOW, priorMac: first.mac });
      return [first.wire, ...middle, withMac(last.wire, new Uint8Array(hmac.digest()))];
    };
    const ninetyNine = createTsigResponseVerifier(KEY, request.mac);
    const kinds = build(TSIG_MAX_UNSIGNED_MESSAGES).map((m) => ninetyNine.verify(m, NOW).kind);
    expect(kinds.at(-1)).toBe('verified');
    expect(kinds.filter((k) => k === 'unsigned')).toHaveLength(TSIG_MAX_UNSIGNED_MESSAGES);
    const hundred = createTsigResponseVerifier(KEY, request.mac);
    const results = build(TSIG_MAX_UNSIGNED_MESSAGES + 1).map((m) => hundred.verify(m, NOW));
    expect(results.some((r) => r.kind === 'failed')).toBe(true);
  });

  it('refuses an unsigned first message of a response', () => {
    const request = signMessage(query(), KEY, { now: NOW });
    const verifier = createTsigResponseVerifier(KEY, request.mac);
    expect(verifier.verify(query(), NOW)).toMatchObject({
      kind: 'failed',
      reason: 'the response is not signed',
    });
  });

  it('takes the fudge of a request as its window, but never more than 300 s', () => {
    const wide = signMessage(query(), KEY, { now: NOW, fudge: 3600 });
    expect(verifyRequest(wide.wire, RING, NOW + 299).kind).toBe('verified');
    expect(verifyRequest(wide.wire, RING, NOW + 1000)).toMatchObject({ error: 'BADTIME' });
    const narrow = signMessage(query(), KEY, { now: NOW, fudge: 10 });
    expect(verifyRequest(narrow.wire, RING, NOW + 11)).toMatchObject({ error: 'BADTIME' });
  });

  it('answers BADKEY and BADSIG with an unsigned TSIG carrying the error', () => {
    const signed = signMessage(query(), KEY, { now: NOW });
    const split = splitTsig(signed.wire);
    if (split.kind !== 'signed') throw new Error('not signed');
    const answer = encodeMessage(respondError(decodeMessage(split.unsigned), 'NOTAUTH'));
    const error = splitTsig(appendUnsignedTsig(answer, split.tsig, 'BADKEY'));
    expect(error).toMatchObject({ kind: 'signed', tsig: { error: 17, keyName: 'xfr.example' } });
    expect(error.kind === 'signed' && error.tsig.mac.length).toBe(0);
    const verifier = createTsigResponseVerifier(KEY, signed.mac);
    expect(verifier.verify(appendUnsignedTsig(answer, split.tsig, 'BADSIG'), NOW)).toMatchObject({
      kind: 'failed',
      reason: 'the server answered TSIG error BADSIG',
    });
  });

  it('tells how long the TSIG record of a key is', () => {
    const signed = signMessage(query(), KEY, { now: NOW });
    expect(signed.wire.length - query().length).toBe(tsigRecordOctets(KEY));
    const long = createTsigKey('a-longer-name.xfr.example', 'hmac-sha512', new Uint8Array(64));
    const signedLong = signMessage(query(), long, { now: NOW });
    expect(signedLong.wire.length - query().length).toBe(tsigRecordOctets(long));
  });
});

describe('a TSIG out of place or malformed (RFC 8945 §5.1, §5.2.2.1)', () => {
  const signed = (): Uint8Array => signMessage(query(), KEY, { now: NOW }).wire;

  it('is not the last record: an OPT after it', () => {
    const wire = signed();
    const opt = Uint8Array.of(0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0);
    const out = Buffer.concat([Buffer.from(wire), Buffer.from(opt)]);
    out.writeUInt16BE(out.readUInt16BE(10) + 1, 10);
    expect(splitTsig(out).kind).toBe('malformed');
    expect(verifyRequest(out, RING, NOW).kind).toBe('malformed');
  });

  it('appears twice', () => {
    const once = signed();
    const twice = signMessage(once, KEY, { now: NOW }).wire;
    expect(splitTsig(twice)).toMatchObject({ kind: 'malformed' });
  });

  it('has a MAC too short to be allowed, or shorter than the whole HMAC', () => {
    const wire = signed();
    const split = splitTsig(wire);
    if (split.kind !== 'signed') throw new Error('not signed');
    const truncated = (octets: number): Uint8Array => {
      const message = Buffer.from(split.unsigned);
      message.writeUInt16BE(0x1234, 0);
      const tsig = appendTsigWithMac(message, split.tsig.mac.subarray(0, octets));
      return tsig;
    };
    expect(verifyRequest(truncated(8), RING, NOW).kind).toBe('malformed');
    // 16 octets of the right MAC: allowed by §5.2.2.1, refused by this project's policy.
    expect(verifyRequest(truncated(16), RING, NOW)).toMatchObject({
      kind: 'failed',
      error: 'BADTRUNC',
    });
  });

  it('is in a message that does not frame', () => {
    expect(splitTsig(new Uint8Array(5)).kind).toBe('malformed');
    const wire = signed();
    expect(splitTsig(wire.subarray(0, wire.length - 3)).kind).toBe('malformed');
    expect(splitTsig(Buffer.concat([Buffer.from(wire), Buffer.of(0)])).kind).toBe('malformed');
  });

  it('is absent', () => {
    expect(splitTsig(query())).toEqual({ kind: 'unsigned' });
    expect(verifyRequest(query(), RING, NOW)).toEqual({ kind: 'unsigned' });
  });
});

describe('keys and key files', () => {
  it('writes the key file tsig-keygen writes, and reads it back', () => {
    const text = formatTsigKeyFile(KEY);
    expect(text).toBe(
      `key "xfr.example" {\n\talgorithm hmac-sha256;\n\tsecret "${Buffer.alloc(32, 7).toString('base64')}";\n};\n`,
    );
    expect(parseTsigKeyFile(text)).toEqual(KEY);
  });

  it('reads comments, another order, and an algorithm name in capitals', () => {
    const secret = Buffer.alloc(64, 9).toString('base64');
    const key = parseTsigKeyFile(
      `# made for NSD\n/* secondary */ key "NSD.Example." { secret "${secret}"; // yes\n algorithm HMAC-SHA512; };\n`,
    );
    expect(key.name).toBe('nsd.example');
    expect(key.algorithm).toBe('hmac-sha512');
    expect(key.secret).toHaveLength(64);
  });

  it('reads a secret holding "//" and "#" as the secret, not as a comment', () => {
    // 0xff 0xff 0xff is "////" in base64; 0xfb 0xf0 is "+/A"; a quoted "#" is no comment either.
    const secret = Buffer.concat([Buffer.alloc(30, 0xff), Buffer.of(0xfb, 0xf0)]);
    const text = formatTsigKeyFile({ ...KEY, secret });
    expect(text).toContain('//');
    expect(Buffer.from(parseTsigKeyFile(text).secret).equals(secret)).toBe(true);
    expect(
      parseTsigKeyFile(
        'key "a#b" { algorithm hmac-sha256; secret "' + secret.toString('base64') + '"; }; # end',
      ).name,
    ).toBe('a#b');
  });

  it.each([
    ['two clauses', `${formatTsigKeyFile(KEY)}${formatTsigKeyFile(KEY)}`, 'ERR_TSIG_KEY_FILE'],
    ['no secret', 'key "a" { algorithm hmac-sha256; };', 'ERR_TSIG_KEY_FILE'],
    [
      'hmac-md5',
      `key "a" { algorithm hmac-md5; secret "${Buffer.alloc(32).toString('base64')}"; };`,
      'ERR_TSIG_BAD_KEY',
    ],
    [
      'a short secret',
      `key "a" { algorithm hmac-sha256; secret "${Buffer.alloc(MIN_TSIG_SECRET_OCTETS - 1).toString('base64')}"; };`,
      'ERR_TSIG_BAD_KEY',
    ],
    [
      'a secret not in base64',
      'key "a" { algorithm hmac-sha256; secret "not*base64*at*all*!!"; };',
      'ERR_TSIG_BAD_KEY',
    ],
    ['nothing', '', 'ERR_TSIG_KEY_FILE'],
  ] as const)('refuses %s', (_what, text, code) => {
    expect(tsigError(() => parseTsigKeyFile(text))).toBe(code);
  });

  it('refuses a key name listed twice in a keyring', () => {
    expect(tsigError(() => createTsigKeyring([KEY, KEY]))).toBe('ERR_TSIG_DUPLICATE_KEY');
  });
});

/** `wire` with its TSIG's MAC replaced by `mac` (same length). */
function withMac(wire: Uint8Array, mac: Uint8Array): Uint8Array {
  const split = splitTsig(wire);
  if (split.kind !== 'signed') throw new Error('not signed');
  const out = Uint8Array.from(wire);
  const at = Buffer.from(wire).indexOf(Buffer.from(split.tsig.mac));
  out.set(mac, at);
  return out;
}

/** `message` (id put back) with a TSIG of `KEY` carrying `mac` as it is. */
function appendTsigWithMac(message: Uint8Array, mac: Uint8Array): Uint8Array {
  const full = signMessage(message, KEY, { now: NOW }).wire;
  const split = splitTsig(full);
  if (split.kind !== 'signed') throw new Error('not signed');
  const at = Buffer.from(full).indexOf(Buffer.from(split.tsig.mac));
  const out = Buffer.concat([
    Buffer.from(full.subarray(0, at - 2)),
    Buffer.from([mac.length >> 8, mac.length & 0xff]),
    Buffer.from(mac),
    Buffer.from(full.subarray(at + split.tsig.mac.length)),
  ]);
  // RDLENGTH of the TSIG record: 2 octets before the algorithm name.
  const rdataStart = full.length - (split.tsig.mac.length + 6 + 10 + 'hmac-sha256'.length + 2);
  out.writeUInt16BE(
    out.readUInt16BE(rdataStart - 2) - (split.tsig.mac.length - mac.length),
    rdataStart - 2,
  );
  return out;
}
