import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
// The modules themselves rather than the package index, so these tests load only the codec.
import { WireError } from '../src/protocol/errors.js';
import { formatLabels } from '../src/protocol/names.js';
import type { Message, ResourceRecord } from '../src/protocol/records.js';
import {
  codeToType,
  decodeMessage,
  decodeName,
  encodeMessage,
  HEADER_OCTETS,
  MAX_MESSAGE_OCTETS,
  MAX_RECORDS_PER_MESSAGE,
} from '../src/protocol/wire.js';
import { sharedDataPath } from '../../../test/helpers/shared-data.js';

/**
 * Robustness of the decoder against hostile bytes: BIND 9's fuzzing seeds (MPL-2.0, see the
 * corpus LICENSE) and a seeded stream of random and mutated inputs. The contract: every input
 * either decodes, and then re-encodes, or throws `WireError` with a code other than
 * `ERR_WIRE_INTERNAL` — never another exception, never a hang.
 */

const CORPUS = sharedDataPath('corpus', 'bind9-fuzz');
const MESSAGES = join(CORPUS, 'dns_message_parse.in');
const NAMES = join(CORPUS, 'dns_name_fromwire.in');

/** Seed of the generated inputs; a failure message names the seed and the input's index. */
const SEED = 0x4d494d49;
const MUTATED_INPUTS = 100_000;

function readCorpus(dir: string): Array<{ file: string; bytes: Uint8Array }> {
  if (!existsSync(dir)) {
    throw new Error(
      `fuzz corpus not found at ${dir}: expected the BIND 9 seeds in /work/shared/corpus/bind9-fuzz`,
    );
  }
  return readdirSync(dir)
    .sort()
    .map((file) => ({ file, bytes: new Uint8Array(readFileSync(join(dir, file))) }));
}

/** mulberry32: a small, seedable PRNG, so every generated input can be reproduced. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Random = () => number;

const int = (rand: Random, n: number): number => Math.floor(rand() * n);
const pick = <T>(rand: Random, list: readonly T[]): T => list[int(rand, list.length)] as T;
const randomBytes = (rand: Random, n: number): Uint8Array =>
  Uint8Array.from({ length: n }, () => int(rand, 256));

type Outcome = { kind: 'decoded' } | { kind: 'rejected'; code: string };

/** Decodes, and re-encodes what decoded; anything but the contract fails with `label`. */
function exercise(bytes: Uint8Array, label: string): Outcome {
  let message: Message;
  try {
    message = decodeMessage(bytes);
  } catch (e) {
    if (e instanceof WireError && e.code !== 'ERR_WIRE_INTERNAL') {
      return { kind: 'rejected', code: e.code };
    }
    throw new Error(`${label}: decoding threw ${String(e)}; input ${hex(bytes)}`, { cause: e });
  }
  try {
    // What decodes must encode, and encoding is then a fixed point.
    const encoded = encodeMessage(message);
    const again = encodeMessage(decodeMessage(encoded));
    if (hex(again) !== hex(encoded)) throw new Error('re-encoding is not stable');
  } catch (e) {
    throw new Error(`${label}: re-encoding failed: ${String(e)}; input ${hex(bytes)}`, {
      cause: e,
    });
  }
  return { kind: 'decoded' };
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

// ---------------------------------------------------------------------------------------------
// Seeds: messages of our own encoder, from a seeded generator

const SUFFIXES = ['4.4.e164.mimi.arpa', 'e164.mimi.arpa', 'dp.example', 'Example.COM', '.'];

function randomName(rand: Random): string {
  const labels = Array.from({ length: int(rand, 3) }, () =>
    rand() < 0.8
      ? Buffer.from(pick(rand, ['ns1', 'a', '_dns', 'www', '8', 'X-y', 'csi']))
      : randomBytes(rand, 1 + int(rand, 12)),
  );
  const suffix = pick(rand, SUFFIXES);
  if (labels.length === 0) return suffix;
  const prefix = formatLabels(labels.map((l) => new Uint8Array(l)));
  return suffix === '.' ? prefix : `${prefix}.${suffix}`;
}

function randomRecord(rand: Random): ResourceRecord {
  const name = randomName(rand);
  const base = { name, class: 'IN' as const, ttl: int(rand, 100_000) };
  const types = () => [...new Set(Array.from({ length: int(rand, 5) }, () => int(rand, 300)))];
  const sortedTypes = () =>
    types()
      .sort((a, b) => a - b)
      .map(codeToType);
  switch (int(rand, 17)) {
    case 0:
      return { ...base, type: 'A', data: [...randomBytes(rand, 4)].join('.') };
    case 1:
      return { ...base, type: 'AAAA', data: `2001:db8::${int(rand, 0xffff).toString(16)}` };
    case 2:
      return { ...base, type: 'NS', data: randomName(rand) };
    case 3:
      return { ...base, type: 'CNAME', data: randomName(rand) };
    case 4:
      return { ...base, type: 'TXT', data: [randomBytes(rand, int(rand, 20))] };
    case 5:
      return {
        ...base,
        type: 'SOA',
        data: {
          mname: randomName(rand),
          rname: randomName(rand),
          serial: int(rand, 2 ** 32),
          refresh: 7200,
          retry: 3600,
          expire: 1209600,
          minimum: 300,
        },
      };
    case 6:
      return {
        ...base,
        type: 'DS',
        data: {
          keyTag: int(rand, 65536),
          algorithm: 15,
          digestType: 2,
          digest: randomBytes(rand, 32),
        },
      };
    case 7:
      return {
        ...base,
        type: 'DNSKEY',
        data: { flags: 257, protocol: 3, algorithm: 15, publicKey: randomBytes(rand, 32) },
      };
    case 8:
      return {
        ...base,
        type: 'RRSIG',
        data: {
          typeCovered: codeToType(1 + int(rand, 300)),
          algorithm: 15,
          labels: int(rand, 8),
          originalTtl: 3600,
          expiration: int(rand, 2 ** 32),
          inception: int(rand, 2 ** 32),
          keyTag: int(rand, 65536),
          signerName: randomName(rand),
          signature: randomBytes(rand, 64),
        },
      };
    case 9:
      return { ...base, type: 'NSEC', data: { nextName: randomName(rand), types: sortedTypes() } };
    case 10:
      return {
        ...base,
        type: 'NSEC3',
        data: {
          hashAlgorithm: 1,
          flags: int(rand, 2),
          iterations: 0,
          salt: randomBytes(rand, int(rand, 4)),
          nextHashedOwner: randomBytes(rand, 20),
          types: sortedTypes(),
        },
      };
    case 11:
      return {
        ...base,
        type: 'NSEC3PARAM',
        data: { hashAlgorithm: 1, flags: 0, iterations: 0, salt: randomBytes(rand, int(rand, 4)) },
      };
    case 12:
      return rand() < 0.3
        ? { ...base, type: 'SVCB', data: { priority: 0, target: randomName(rand), params: {} } }
        : {
            ...base,
            type: 'SVCB',
            data: {
              priority: 1 + int(rand, 10),
              target: randomName(rand),
              params: {
                mandatory: ['alpn'],
                alpn: ['h2', 'h3'],
                port: int(rand, 65536),
                ipv4hint: ['192.0.2.1'],
                ipv6hint: ['2001:db8::1'],
                dohpath: '/dns-query{?dns}',
                unknown: [{ key: 9 + int(rand, 100), value: randomBytes(rand, int(rand, 4)) }],
              },
            },
          };
    case 13:
      return { ...base, type: 'MAP', data: randomBytes(rand, 1 + int(rand, 100)) };
    case 14:
      return { ...base, type: 'MAPREF', data: randomName(rand) };
    case 15:
      return {
        ...base,
        type: 'AUTHKEY',
        data: {
          role: rand() < 0.5 ? 'prover' : 'csip',
          algorithm: 15,
          notAfter: int(rand, 2 ** 32),
          publicKey: randomBytes(rand, 32),
        },
      };
    default:
      return {
        ...base,
        type: `TYPE${65280 + int(rand, 100)}`,
        data: randomBytes(rand, int(rand, 10)),
      };
  }
}

function randomMessage(rand: Random): Message {
  const records = (n: number) => Array.from({ length: int(rand, n) }, () => randomRecord(rand));
  const withEdns = rand() < 0.7;
  const message: Message = {
    id: int(rand, 65536),
    flags: {
      qr: rand() < 0.5,
      opcode: 0,
      aa: rand() < 0.5,
      tc: false,
      rd: rand() < 0.5,
      ra: false,
      z: false,
      ad: false,
      cd: rand() < 0.5,
    },
    rcode: pick(rand, ['NOERROR', 'NXDOMAIN', 'SERVFAIL'] as const),
    questions: [
      { name: randomName(rand), type: pick(rand, ['MAP', 'NS', 'DS'] as const), class: 'IN' },
    ],
    answers: records(4),
    authorities: records(6),
    additionals: records(6),
  };
  if (withEdns) {
    message.edns = {
      udpPayloadSize: 1232,
      extendedRcode: 0,
      version: 0,
      dnssecOk: true,
      options: rand() < 0.5 ? [] : [{ code: 10, data: randomBytes(rand, 8) }],
    };
  }
  return message;
}

// ---------------------------------------------------------------------------------------------
// Mutations

/** Offsets of the compression pointers in an encoded message (a rough scan is enough here). */
function pointerOffsets(bytes: Uint8Array): number[] {
  const found: number[] = [];
  for (let i = HEADER_OCTETS; i + 1 < bytes.length; i++) {
    if (((bytes[i] as number) & 0xc0) === 0xc0) found.push(i);
  }
  return found;
}

const MUTATIONS: ReadonlyArray<(rand: Random, input: Uint8Array, other: Uint8Array) => Uint8Array> =
  [
    // Flip one to eight bits.
    (rand, input) => {
      const out = input.slice();
      for (let k = 1 + int(rand, 8); k > 0 && out.length > 0; k--) {
        const i = int(rand, out.length);
        out[i] = (out[i] as number) ^ (1 << int(rand, 8));
      }
      return out;
    },
    // Overwrite a few octets.
    (rand, input) => {
      const out = input.slice();
      for (let k = 1 + int(rand, 4); k > 0 && out.length > 0; k--)
        out[int(rand, out.length)] = int(rand, 256);
      return out;
    },
    // Truncate.
    (rand, input) => input.slice(0, int(rand, input.length + 1)),
    // Extend with random octets.
    (rand, input) => {
      const out = new Uint8Array(input.length + 1 + int(rand, 32));
      out.set(input);
      out.set(randomBytes(rand, out.length - input.length), input.length);
      return out;
    },
    // Change a header count: by one, or to anything.
    (rand, input) => {
      const out = input.slice();
      if (out.length < HEADER_OCTETS) return out;
      const at = 4 + 2 * int(rand, 4);
      const old = ((out[at] as number) << 8) | (out[at + 1] as number);
      const value = rand() < 0.6 ? (old + (rand() < 0.5 ? 1 : 0xffff)) & 0xffff : int(rand, 65536);
      out[at] = value >> 8;
      out[at + 1] = value & 0xff;
      return out;
    },
    // Rewrite a compression pointer: forwards, to itself, into the header, or anywhere.
    (rand, input) => {
      const out = input.slice();
      const pointers = pointerOffsets(out);
      if (pointers.length === 0) return out;
      const at = pick(rand, pointers);
      const choice = int(rand, 4);
      const target =
        choice === 0
          ? at
          : choice === 1
            ? int(rand, HEADER_OCTETS)
            : choice === 2
              ? at + 1 + int(rand, 40)
              : int(rand, at);
      out[at] = 0xc0 | ((target >> 8) & 0x3f);
      out[at + 1] = target & 0xff;
      return out;
    },
    // Insert a pointer at a random place.
    (rand, input) => {
      const at = int(rand, input.length + 1);
      const target = int(rand, Math.max(1, at));
      const out = new Uint8Array(input.length + 2);
      out.set(input.subarray(0, at));
      out[at] = 0xc0 | ((target >> 8) & 0x3f);
      out[at + 1] = target & 0xff;
      out.set(input.subarray(at), at + 2);
      return out;
    },
    // Change a 16-bit field (an RDLENGTH, a type, a class) by one.
    (rand, input) => {
      const out = input.slice();
      if (out.length < HEADER_OCTETS + 2) return out;
      const at = HEADER_OCTETS + int(rand, out.length - HEADER_OCTETS - 1);
      const value =
        ((((out[at] as number) << 8) | (out[at + 1] as number)) + (rand() < 0.5 ? 1 : 0xffff)) &
        0xffff;
      out[at] = value >> 8;
      out[at + 1] = value & 0xff;
      return out;
    },
    // Delete a slice.
    (rand, input) => {
      const at = int(rand, input.length + 1);
      const n = int(rand, 16);
      return Uint8Array.from([...input.subarray(0, at), ...input.subarray(at + n)]);
    },
    // Duplicate a slice in place.
    (rand, input) => {
      const at = int(rand, input.length + 1);
      const n = int(rand, 24);
      return Uint8Array.from([
        ...input.subarray(0, at + n),
        ...input.subarray(at, at + n),
        ...input.subarray(at + n),
      ]);
    },
    // Splice the head of one input onto the tail of another.
    (rand, input, other) =>
      Uint8Array.from([
        ...input.subarray(0, int(rand, input.length + 1)),
        ...other.subarray(int(rand, other.length + 1)),
      ]),
  ];

function mutate(rand: Random, input: Uint8Array, other: Uint8Array): Uint8Array {
  let out = input;
  for (let k = 1 + int(rand, 3); k > 0; k--) out = pick(rand, MUTATIONS)(rand, out, other);
  return out;
}

/** A header with small counts followed by random octets: inputs that get past the header. */
function randomInput(rand: Random): Uint8Array {
  if (rand() < 0.3) return randomBytes(rand, int(rand, 64));
  const body = randomBytes(rand, int(rand, 300));
  const out = new Uint8Array(HEADER_OCTETS + body.length);
  out.set(randomBytes(rand, 4));
  for (let i = 0; i < 4; i++) out[5 + 2 * i] = int(rand, 4);
  out.set(body, HEADER_OCTETS);
  return out;
}

// ---------------------------------------------------------------------------------------------

describe('decoding hostile input', () => {
  const messages = readCorpus(MESSAGES);
  const names = readCorpus(NAMES);

  it('finds the BIND 9 fuzzing corpus', () => {
    expect(messages.length).toBeGreaterThan(100);
    expect(names.length).toBeGreaterThan(10);
  });

  it('decodes or rejects with WireError every message of the BIND 9 corpus', () => {
    const outcomes = messages.map(({ file, bytes }) => exercise(bytes, file));
    // Most seeds are well-formed messages; they must not all be rejected.
    expect(outcomes.filter((o) => o.kind === 'decoded').length).toBeGreaterThan(
      messages.length / 2,
    );
  });

  it('decodes or rejects with WireError every name of the BIND 9 corpus, at every offset', () => {
    for (const { file, bytes } of names) {
      for (let offset = 0; offset <= bytes.length; offset++) {
        try {
          const { name, end } = decodeName(bytes, offset);
          expect(end).toBeGreaterThan(offset);
          expect(typeof name).toBe('string');
        } catch (e) {
          if (!(e instanceof WireError) || e.code === 'ERR_WIRE_INTERNAL') {
            throw new Error(`${file} at ${offset}: ${String(e)}`, { cause: e });
          }
        }
      }
    }
  });

  it(`survives ${MUTATED_INPUTS} random and mutated inputs (seed 0x${SEED.toString(16)})`, () => {
    const rand = prng(SEED);
    const ours = Array.from({ length: 200 }, () => encodeMessage(randomMessage(rand)));
    for (const bytes of ours) expect(exercise(bytes, 'generated seed').kind).toBe('decoded');
    const seeds = [...ours, ...messages.map((m) => m.bytes).filter((b) => b.length <= 4096)];
    const codes = new Map<string, number>();
    let decoded = 0;
    for (let i = 0; i < MUTATED_INPUTS; i++) {
      const input =
        i % 10 === 0 ? randomInput(rand) : mutate(rand, pick(rand, seeds), pick(rand, seeds));
      const outcome = exercise(input, `seed 0x${SEED.toString(16)}, input ${i}`);
      if (outcome.kind === 'decoded') decoded += 1;
      else codes.set(outcome.code, (codes.get(outcome.code) ?? 0) + 1);
    }
    // The stream must exercise both paths and most of the rules.
    expect(decoded).toBeGreaterThan(MUTATED_INPUTS / 100);
    expect(codes.size).toBeGreaterThanOrEqual(10);
  });

  // Its speed is the bench's to measure (bench/), never a timed assertion here.
  it('rejects full-size inputs with huge counts, walking the bytes rather than the counts', () => {
    const rand = prng(SEED ^ 1);
    for (let i = 0; i < 200; i++) {
      const bytes = randomBytes(rand, MAX_MESSAGE_OCTETS);
      for (let k = 4; k < HEADER_OCTETS; k++) bytes[k] = 0xff;
      if (i % 2 === 1) {
        // Counts just within the limit: the decoder must walk the bytes, not trust the counts.
        bytes[4] = (MAX_RECORDS_PER_MESSAGE >> 8) & 0xff;
        bytes.fill(0, 5, HEADER_OCTETS);
      }
      expect(exercise(bytes, `full-size input ${i}`).kind).toBe('rejected');
    }
  });
});
