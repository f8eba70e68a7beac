/**
 * Contact sync: a messaging back end learns, for a user's whole address book at once, on which
 * services each contact can be reached (design §6, R3, R5), with `discoverMany` of an
 * in-process resolver. Every result is verified end to end (DNSSEC from the root's trust anchor,
 * the recipient's signature, the prover's attestation) and is one of:
 *
 * - `found`: the recipient published mappings that list MSPs;
 * - `empty`: the recipient published a mapping listing no MSP (opted out);
 * - `none`:  authenticated denial, nobody published anything for this CSI;
 * - `error`: the lookup failed, here because an entry of the address book is not a CSI.
 *
 * The example first starts a root and a DP for `+44` and `@example.com` on 127.0.0.1, and has
 * three recipients register through the DP's registrar (recipient-app.ts shows the same over
 * the HTTPS API), then prints one table row per contact.
 *
 * Run: `npx tsc -b && npx vite-node examples/contact-sync.ts`
 */
import {
  createMapping,
  encodeMapping,
  generateKeyPair,
  type Ed25519KeyPair,
  type MspEntry,
} from '@mimi-discovery/common';
import { createRegistrar, type CodeChannel } from '@mimi-discovery/authoritative';
import { createResolver, type DiscoveryResult } from '@mimi-discovery/resolver';
import { APEX, isMain, startLoopbackNetwork } from './loopback-network.js';

/** The address book, as people typed it. */
export const ADDRESS_BOOK = Object.freeze([
  '+44 20 7946 0018',
  'Alice@Example.COM',
  '+44 20 7946 0019',
  '+44 20 7946 0020',
  'bob@example.com',
  '+44 12',
]);

/** Who registered what before the sync: a CSI and the MSPs its owner listed. */
const REGISTERED: ReadonlyArray<{ csi: string; msps: MspEntry[] }> = [
  { csi: '+44 20 7946 0018', msps: [{ provider: 'chat.example', tags: ['primary', 'mls'] }] },
  {
    csi: 'alice@example.com',
    msps: [
      // Preferences (docs/recipients.md): a context each, and an order across the two.
      { provider: 'chat.example', tags: ['business', 'pref:2'] },
      { provider: 'msg.example', tags: ['personal', 'pref:1'], uri: 'im:alice@msg.example' },
    ],
  },
  // Opted out: a signed mapping that lists no MSP, so senders get `empty`, not `none`.
  { csi: '+44 20 7946 0019', msps: [] },
];

/** Runs the example, writing what it shows through `log`, one line per call. */
export async function main(log: (line: string) => void): Promise<void> {
  const net = await startLoopbackNetwork(['+44', '@example.com']);
  const resolver = createResolver(net.resolverConfig);
  try {
    // The DP's own registrar, as its HTTPS API uses it; codes go to memory instead of a file.
    const codes = new Map<string, string>();
    const memory: CodeChannel = {
      name: 'memory',
      send: async ({ csi, code }) => void codes.set(csi, code),
    };
    const registrar = createRegistrar({
      store: net.dp.store,
      channels: { fallback: memory },
      apex: APEX,
    });
    for (const { csi, msps } of REGISTERED) {
      const recipient: Ed25519KeyPair = generateKeyPair();
      const proved = await registrar.prove({ csi });
      const code = codes.get(proved.csi) ?? '';
      const { attestation } = await registrar.confirm({
        csi,
        code,
        key: recipient.publicKey,
      });
      const now = Math.floor(Date.now() / 1000);
      const mapping = createMapping(
        {
          csi: proved.csi,
          msps,
          seq: 1,
          iat: now,
          exp: now + 30 * 86_400,
          new: false,
          att: attestation,
        },
        recipient.secretKey,
      );
      await registrar.publishMapping({ csi: proved.csi, mapping: encodeMapping(mapping) });
    }
    log(`registered ${REGISTERED.length} recipients with the DP (${net.zones.join(', ')})`);

    const results = await resolver.discoverMany(ADDRESS_BOOK);
    log('');
    for (const line of table(ADDRESS_BOOK, results)) log(line);
  } finally {
    await resolver.close();
    await net.close();
  }
}

/**
 * One row per contact: as typed, canonical CSI, status, and the MSPs ranked in the recipient's
 * order (`msps`) or the reason (the table `oblivious-sync.ts` prints too).
 */
export function table(inputs: readonly string[], results: readonly DiscoveryResult[]): string[] {
  const rows = results.map((result, i) => [
    inputs[i] ?? '',
    result.csi,
    result.status,
    result.status === 'error'
      ? `reason: ${result.error?.reason ?? 'unknown'}`
      : // The MSPs in the recipient's order, across every mapping: a sender uses the first.
        result.msps.map((msp) => `${msp.provider} [${msp.tags.join(', ')}]`).join('; ') || '-',
  ]);
  const header = ['contact', 'csi', 'status', 'msps'];
  const widths = header.map((h, col) => Math.max(h.length, ...rows.map((r) => r[col]!.length)));
  const format = (cells: readonly string[]): string =>
    cells
      .map((cell, col) => cell.padEnd(widths[col]!))
      .join('  ')
      .trimEnd();
  return [format(header), format(widths.map((w) => '-'.repeat(w))), ...rows.map(format)];
}

if (isMain(import.meta.url)) {
  main((line) => console.log(line)).catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : String(error));
    process.exitCode = 1;
  });
}
