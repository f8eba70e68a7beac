/**
 * A recipient app (design §8): the owner of `+44 20 7946 0018` makes its number discoverable on
 * `chat.example`, checks that senders see it, then withdraws it (R9).
 *
 * 1. generate an Ed25519 key on the device;
 * 2. `prove` (`POST /v1/prove`): the DP sends a one-time code (here to its development outbox
 *    file);
 * 3. `confirm` (`POST /v1/confirm`) with the code and the public key: the DP, as prover, returns
 *    an attestation binding the key to the number;
 * 4. sign a mapping (number → MSPs) with the key and `publishMapping` (`POST /v1/mappings`);
 * 5. discover the number through a resolver, as any sender's MSP would: `found`;
 * 6. sign a removal and `remove` (`POST /v1/removals`); once the resolver's cached answer has
 *    expired (its TTL, at most 300 s; the example moves the resolver's clock instead of
 *    waiting), the number is `none` again.
 *
 * The app talks to the DP through the registration client of @mimi-discovery/authoritative
 * (`createRegistrationClient`), over HTTPS with a certificate from a local CA that the app is
 * told to trust; byte strings travel as base64url without padding, signed objects as
 * deterministic CBOR.
 *
 * Run: `npx tsc -b && npx vite-node examples/recipient-app.ts`
 */
import {
  createMapping,
  createRemoval,
  generateKeyPair,
  parseCsi,
  verifyAttestation,
} from '@mimi-discovery/common';
import { createRegistrationClient, lastOutboxCode } from '@mimi-discovery/authoritative';
import { createResolver, type DiscoveryResult } from '@mimi-discovery/resolver';
import { isMain, startLoopbackNetwork } from './loopback-network.js';

/** The number the recipient registers, as typed into the app. */
export const NUMBER = '+44 20 7946 0018';

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');
const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/** Runs the example, writing what it shows through `log`, one line per call. */
export async function main(log: (line: string) => void): Promise<void> {
  const net = await startLoopbackNetwork(['+44']);
  // The app trusts the DP's certificate through the local CA, not the system's roots. A refusal
  // rejects with a RegistrationClientError carrying the DP's stable code (`ERR_STALE_SEQ`, …).
  const dp = createRegistrationClient({
    url: net.apiUrl,
    ca: net.caPem,
    onResponse: ({ method, path, status }) => log(`  ${method} ${path} → ${status}`),
  });
  // A resolver whose clock the example can move forward, to let cached answers expire.
  let clockSkewSeconds = 0;
  const resolver = createResolver(net.resolverConfig, {
    now: () => Date.now() / 1000 + clockSkewSeconds,
  });

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
    const proved = await dp.prove(NUMBER);
    log(`  a code went out through the ${proved.result.channel} channel`);
    // The development channel: the DP appends codes to a file instead of sending an SMS.
    const code = await lastOutboxCode(net.outbox, csi);
    if (code === undefined) throw new Error(`no code for ${csi} in ${net.outbox}`);

    // The client checks that the attestation is for this number and this key.
    const confirmed = await dp.confirm({ csi, code, key: recipient.publicKey });
    const { attestation } = confirmed.result;
    // The app checks the prover's signature and the dates before signing anything with it.
    const checked = verifyAttestation(attestation, { csi, now: nowSeconds() });
    if (checked.kind === 'failed')
      throw new Error('the DP returned an attestation that does not verify');
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
    // The mapping does not carry the number (a MAP record should not spell it): the request
    // names it, and the DP checks that both signatures cover it.
    const published = await dp.publishMapping({ csi, mapping });
    log(`  stored in zone ${published.result.zone}, SOA serial ${published.result.serial}`);

    const before = await resolver.discover(NUMBER);
    log(`resolver: ${show(before)}`);

    log('removing the mapping');
    await dp.remove(
      createRemoval({ csi, seq: mapping.seq, iat: nowSeconds() }, recipient.secretKey),
    );

    const cached = await resolver.discover(NUMBER);
    log(`resolver, from its cache: ${show(cached)}`);
    clockSkewSeconds = before.ttl + 1;
    const after = await resolver.discover(NUMBER);
    log(`resolver, ${before.ttl + 1}s later: ${show(after)}`);
  } finally {
    await resolver.close();
    await dp.close();
    await net.close();
  }
}

if (isMain(import.meta.url)) {
  main((line) => console.log(line)).catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : String(error));
    process.exitCode = 1;
  });
}
