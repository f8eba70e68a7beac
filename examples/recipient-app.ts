/**
 * A recipient app (design §8): the owner of `+44 20 7946 0018` makes its number discoverable on
 * `chat.example`, checks that senders see it, then withdraws it (R9).
 *
 * 1. generate an Ed25519 key on the device;
 * 2. `POST /v1/prove`: the DP sends a one-time code (here to its development outbox file);
 * 3. `POST /v1/confirm` with the code and the public key: the DP, as prover, returns an
 *    attestation binding the key to the number;
 * 4. sign a mapping (number → MSPs) with the key and `POST /v1/mappings`;
 * 5. discover the number through a resolver, as any sender's MSP would: `found`;
 * 6. sign a removal and `POST /v1/removals`; once the resolver's cached answer has expired
 *    (its TTL, at most 300 s; the example moves the resolver's clock instead of waiting),
 *    the number is `none` again.
 *
 * The registration API is HTTPS with a certificate from a local CA that the app is told to
 * trust; byte strings travel as base64url without padding, signed objects as deterministic CBOR.
 *
 * Run: `npx tsc -b && npx vite-node examples/recipient-app.ts`
 */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import {
  createMapping,
  createRemoval,
  decodeAttestation,
  encodeMapping,
  encodeRemoval,
  generateKeyPair,
  parseCsi,
  verifyAttestation,
} from '@mimi-discovery/common';
import { createResolver, type DiscoveryResult } from '@mimi-discovery/resolver';
import { isMain, startLoopbackNetwork } from './loopback-network.js';

/** The number the recipient registers, as typed into the app. */
export const NUMBER = '+44 20 7946 0018';

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');
const unb64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'base64url'));
const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/** Runs the example, writing what it shows through `log`, one line per call. */
export async function main(log: (line: string) => void): Promise<void> {
  const net = await startLoopbackNetwork(['+44']);
  // The app trusts the DP's certificate through the local CA, not the system's roots.
  const agent = new Agent({ connect: { ca: net.caPem } });
  // A resolver whose clock the example can move forward, to let cached answers expire.
  let clockSkewSeconds = 0;
  const resolver = createResolver(net.resolverConfig, {
    now: () => Date.now() / 1000 + clockSkewSeconds,
  });

  /** POSTs JSON to the DP's registration API; a refusal throws with the DP's error code. */
  const post = async (route: string, body: unknown): Promise<Record<string, unknown>> => {
    const response = await request(`${net.apiUrl}${route}`, {
      dispatcher: agent,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const json = (await response.body.json()) as Record<string, unknown>;
    if (response.statusCode >= 400) {
      throw new Error(`${route}: ${response.statusCode} ${JSON.stringify(json['error'])}`);
    }
    log(`  POST ${route} → ${response.statusCode}`);
    return json;
  };
  const show = (result: DiscoveryResult): string =>
    `${result.csi} ${result.status}` +
    (result.mappings.length > 0
      ? `: ${result.mappings
          .flatMap((m) => m.msps.map((msp) => `${msp.provider} [${msp.tags.join(', ')}]`))
          .join('; ')} (zone ${result.mappings[0]?.zone ?? '?'})`
      : '') +
    `, ttl ${result.ttl}s`;

  try {
    const csi = parseCsi(NUMBER);
    const recipient = generateKeyPair();
    log(`key generated for ${csi}: ${b64(recipient.publicKey)}`);

    log('proving control of the number');
    const proved = await post('/v1/prove', { csi: NUMBER });
    log(`  a code went out through the ${String(proved['channel'])} channel`);
    const code = lastCode(net.outbox, csi);

    const confirmed = await post('/v1/confirm', { csi, code, key: b64(recipient.publicKey) });
    const attestation = decodeAttestation(unb64(String(confirmed['attestation'])));
    // The app checks what it was given before signing anything with it.
    const checked = verifyAttestation(attestation, { csi, now: nowSeconds() });
    if (!checked.ok || b64(attestation.key) !== b64(recipient.publicKey)) {
      throw new Error('the DP returned an attestation for another key or CSI');
    }
    log(`  attested by prover ${b64(attestation.prover)}`);

    log('publishing a mapping');
    const iat = nowSeconds();
    const mapping = createMapping(
      {
        csi,
        msps: [{ provider: 'chat.example', tags: ['primary'], uri: 'im:alice@chat.example' }],
        seq: iat,
        iat,
        exp: iat + 30 * 86_400,
        new: false,
        att: attestation,
      },
      recipient.secretKey,
    );
    const published = await post('/v1/mappings', { mapping: b64(encodeMapping(mapping)) });
    log(`  stored in zone ${String(published['zone'])}, SOA serial ${String(published['serial'])}`);

    const before = await resolver.discover(NUMBER);
    log(`resolver: ${show(before)}`);

    log('removing the mapping');
    const removal = createRemoval(
      { csi, seq: mapping.seq, iat: nowSeconds() },
      recipient.secretKey,
    );
    await post('/v1/removals', { removal: b64(encodeRemoval(removal)) });

    const cached = await resolver.discover(NUMBER);
    log(`resolver, from its cache: ${show(cached)}`);
    clockSkewSeconds = before.ttl + 1;
    const after = await resolver.discover(NUMBER);
    log(`resolver, ${before.ttl + 1}s later: ${show(after)}`);
  } finally {
    await resolver.close();
    await agent.close();
    await net.close();
  }
}

/** The last one-time code the DP appended to its outbox for `csi` (one JSON object a line). */
function lastCode(outbox: string, csi: string): string {
  const lines = readFileSync(outbox, 'utf8').split('\n').filter(Boolean);
  const entries = lines.map((line) => JSON.parse(line) as { csi: string; code: string });
  const entry = entries.filter((e) => e.csi === csi).at(-1);
  if (entry === undefined) throw new Error(`no code for ${csi} in ${outbox}`);
  return entry.code;
}

if (isMain(import.meta.url)) {
  main((line) => console.log(line)).catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : String(error));
    process.exitCode = 1;
  });
}
