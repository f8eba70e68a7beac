import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createAttestation,
  createMapping,
  createMaprefRequest,
  createRemoval,
  createRevocation,
  encodeMapping,
  encodeMaprefRequest,
  encodeRemoval,
  encodeRevocation,
  keyPairFromSeed,
  type Attestation,
  type Ed25519KeyPair,
  type MspEntry,
} from '@mimi-discovery/common';
import { createMemoryStore } from '../src/store/memory-store.js';
import type { DiscoveryStore } from '../src/store/store.js';

// Shared by the registration tests: a store with the zones of the examples, fixed keys, a
// settable clock, an outbox in a temporary directory, and builders of signed objects.

/** 2026-01-01T00:00:00Z. */
export const T0 = 1_767_225_600;
export const DAY = 86_400;
export const seed = (byte: number): Uint8Array => new Uint8Array(32).fill(byte);

/** The DP's own prover (listed at every apex by the store). */
export const PROVER_SEED = seed(2);
export const RECIPIENT = keyPairFromSeed(seed(1));
export const OTHER_RECIPIENT = keyPairFromSeed(seed(4));
export const CSIP = keyPairFromSeed(seed(3));
/** A key that is listed nowhere. */
export const STRANGER = keyPairFromSeed(seed(5));
/** An independent prover the operator lists at the +44 apex. */
export const INDEPENDENT_PROVER = keyPairFromSeed(seed(6));

export const PHONE_ZONE = '4.4.e164.mimi.arpa';
export const EMAIL_ZONE = 'example.com.email.mimi.arpa';
export const PHONE = 'tel:+442079460018';
export const PHONE_NAME = '8.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa';
export const EMAIL = 'mailto:alice@example.com';

export interface Fixture {
  readonly store: DiscoveryStore;
  readonly clock: { now: number };
  readonly dir: string;
  readonly outbox: string;
  cleanup(): Promise<void>;
}

/** A memory store holding the phone and email zones, with a CSIP and a second prover at +44. */
export async function createFixture(): Promise<Fixture> {
  const clock = { now: T0 };
  const dir = mkdtempSync(join(tmpdir(), 'mimi-registration-'));
  const store = createMemoryStore({ now: () => clock.now, proverSeed: PROVER_SEED });
  const common = {
    nameservers: ['ns1.dp.example'],
    mname: 'ns1.dp.example',
    rname: 'hostmaster.dp.example',
    keySeed: seed(7),
  };
  await store.addZone({
    ...common,
    origin: PHONE_ZONE,
    authkeys: [
      { role: 'csip', publicKey: CSIP.publicKey, notAfter: T0 + 3650 * DAY },
      { role: 'prover', publicKey: INDEPENDENT_PROVER.publicKey, notAfter: T0 + 3650 * DAY },
    ],
  });
  await store.addZone({ ...common, origin: EMAIL_ZONE });
  return {
    store,
    clock,
    dir,
    outbox: join(dir, 'outbox.jsonl'),
    async cleanup() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The lines of the outbox file. */
export function outboxLines(path: string): { csi: string; code: string; expiresAt: number }[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as { csi: string; code: string; expiresAt: number });
}

/** The last code sent to `csi` through the outbox. */
export function lastCode(path: string, csi: string): string {
  const line = outboxLines(path)
    .filter((l) => l.csi === csi)
    .at(-1);
  if (line === undefined) throw new Error(`no code for ${csi} in the outbox`);
  return line.code;
}

/**
 * An attestation and the CSI it attests, as its holder keeps them: an attestation does not
 * carry its CSI (docs/protocol.md §4). The extra `csi` property is ignored when the
 * attestation is encoded or embedded.
 */
export type HeldAttestation = Attestation & { readonly csi: string };

/** `attestation` with the CSI it was issued for. */
export function held(attestation: Attestation, csi: string): HeldAttestation {
  return { ...attestation, csi };
}

/** An attestation as an independent prover (or any key) would make it. */
export function attest(
  csi: string,
  recipient: Ed25519KeyPair,
  proverSeed: Uint8Array,
  nbf: number,
  exp = nbf + 365 * DAY,
): HeldAttestation {
  return held(createAttestation({ csi, key: recipient.publicKey, nbf, exp }, proverSeed), csi);
}

export interface MappingSpec {
  /** The CSI the mapping is signed for; default the attestation's. */
  readonly csi?: string;
  readonly recipient?: Ed25519KeyPair;
  readonly att: HeldAttestation;
  readonly msps?: readonly MspEntry[];
  readonly seq?: number;
  readonly iat: number;
  readonly exp?: number;
  readonly new?: boolean;
}

export function mappingBytes(spec: MappingSpec): Uint8Array {
  const recipient = spec.recipient ?? RECIPIENT;
  return encodeMapping(
    createMapping(
      {
        csi: spec.csi ?? spec.att.csi,
        msps: spec.msps ?? [{ provider: 'msp.example', tags: ['mls'] }],
        seq: spec.seq ?? 1,
        iat: spec.iat,
        exp: spec.exp ?? spec.iat + 30 * DAY,
        new: spec.new ?? false,
        att: spec.att,
      },
      recipient.secretKey,
    ),
  );
}

/** A publication request: the mapping and the CSI it is for (which it does not carry). */
export function mappingOf(spec: MappingSpec): { csi: string; mapping: Uint8Array } {
  return { csi: spec.csi ?? spec.att.csi, mapping: mappingBytes(spec) };
}

export function removalBytes(
  csi: string,
  recipient: Ed25519KeyPair,
  seq: number,
  iat: number,
): Uint8Array {
  return encodeRemoval(createRemoval({ csi, seq, iat }, recipient.secretKey));
}

export function revocationBytes(
  csi: string,
  csip: Ed25519KeyPair,
  before: number,
  iat: number,
): Uint8Array {
  return encodeRevocation(createRevocation({ csi, before, iat }, csip.secretKey));
}

export function maprefBytes(
  att: HeldAttestation,
  target: string | null,
  iat: number,
  recipient: Ed25519KeyPair = RECIPIENT,
): Uint8Array {
  return encodeMaprefRequest(
    createMaprefRequest({ csi: att.csi, target, iat, att }, recipient.secretKey),
  );
}

export const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');
export const unb64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64url'));

/** A zone's records in a stable order, for before/after comparisons. */
export function snapshot(store: DiscoveryStore, origin: string): string[] {
  return store
    .readZone(origin)
    .map((r) => JSON.stringify(r, (_k, v: unknown) => (v instanceof Uint8Array ? b64(v) : v)))
    .sort();
}
