/**
 * Oblivious contact sync (design §7, R6, R8): a sender's app syncs its contact book through an
 * oblivious relay, so that no single operator holds both who asks and for whom. The relay sees
 * the app's address and ciphertext; the resolver's gateway sees the CSIs and the relay's
 * address; each request redeems one anonymous Privacy Pass token, which the gateway cannot link
 * to the user the issuer signed it for.
 *
 * ```
 * sender's app ──OHTTP (RFC 9458)──▶ relay ──▶ resolver's gateway ──DoH──▶ root, DP
 *   │ tokens (RFC 9578), with its credential ──▶ issuer (knows the user, never a CSI)
 *   └ key check: the gateway's KEYCONF, resolved and validated from the root
 * ```
 *
 * The example builds the network in-process, as an operator would with `mimi-discovery`:
 *
 * 1. a root and a DP for `+44` and `@chat.example` (loopback-network.ts), with three
 *    recipients registered;
 * 2. a token issuer (`startIssuer`, `issuer serve`) with one user, `sender1`; its public keys
 *    published as KEYCONF at `issuer.chat.example.email.mimi.arpa` (`keys publish`);
 * 3. a resolver with its gateway (`resolver serve` with `gateway`), which accepts that issuer's
 *    tokens, reading its keys from the tree; the gateway's keys published as KEYCONF at
 *    `resolver.chat.example.email.mimi.arpa`;
 * 4. a relay (`startRelay`, `relay serve`) with one relay resource, `/ohttp/resolver`, and its
 *    query log on;
 * 5. the app: `createDiscoveryClient({ relay })`, which checks the gateway's key against the
 *    KEYCONF in the tree, fetches tokens from the issuer and syncs the book.
 *
 * It prints the results, the tokens spent, the relay's query log (all the relay keeps: no CSI)
 * and whether the results are those of a direct lookup.
 *
 * Run: `npx tsc -b && npx vite-node examples/oblivious-sync.ts`
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  GATEWAY_PUBLIC_KEY_FILE,
  ISSUER_PUBLIC_KEY_FILE,
  createMapping,
  encodeMapping,
  generateKeyPair,
  parseConfig,
  parsePublicKeyFile,
  type MspEntry,
} from '@mimi-discovery/common';
import { createRegistrar, publishKeys, type CodeChannel } from '@mimi-discovery/authoritative';
import {
  createDiscoveryClient,
  createResolver,
  startResolverServer,
  type DiscoveryResult,
  type Resolver,
  type RunningResolverServer,
} from '@mimi-discovery/resolver';
import {
  generateCredential,
  hashCredential,
  issuerConfigSchema,
  startIssuer,
  startRelay,
  type RunningIssuer,
  type RunningRelay,
} from '@mimi-discovery/relay';
import { table } from './contact-sync.js';
import { APEX, isMain, startLoopbackNetwork, type LoopbackNetwork } from './loopback-network.js';

/** The contact book of the sender's app, as its user typed it. */
export const CONTACT_BOOK = Object.freeze([
  '+44 20 7946 0018',
  'alice@chat.example',
  '+44 20 7946 0019',
  '+44 20 7946 0020',
  '+44 20 7946 0021',
  'bob@chat.example',
  '+44 20 7946 0022',
  '+44 20 7946 0023',
  'carol@chat.example',
  '+44 20 7946 0024',
]);

/**
 * CSIs one token covers at the gateway (`gateway.csisPerToken`, default 100). Small here so
 * that the small book takes several requests, each with its own token.
 */
export const CSIS_PER_TOKEN = 4;

/** Tokens the issuer signs for one user per day (`tokensPerPeriod`). */
export const TOKENS_PER_DAY = 50;

/** Where the gateway's keys are published (`keys publish --name`): in the MSP's own zone. */
export const GATEWAY_KEY_NAME = `resolver.chat.example.email.${APEX}`;
/** Where the issuer's token keys are published. */
export const ISSUER_KEY_NAME = `issuer.chat.example.email.${APEX}`;

/** Who registered what before the sync. */
const REGISTERED: ReadonlyArray<{ csi: string; msps: MspEntry[] }> = [
  { csi: '+44 20 7946 0018', msps: [{ provider: 'chat.example', tags: ['primary'] }] },
  { csi: 'alice@chat.example', msps: [{ provider: 'chat.example', tags: ['work'] }] },
  // Opted out: a signed mapping listing no MSP, so senders get `empty`.
  { csi: '+44 20 7946 0021', msps: [] },
];

/** Runs the example, writing what it shows through `log`, one line per call. */
export async function main(log: (line: string) => void): Promise<void> {
  const net = await startLoopbackNetwork(['+44', '@chat.example']);
  const closing: Array<() => Promise<void>> = [];
  try {
    await register(net);
    log(`registered ${REGISTERED.length} recipients with the DP (${net.zones.join(', ')})`);
    const tls = {
      cert: readFileSync(net.tls.cert, 'utf8'),
      key: readFileSync(net.tls.key, 'utf8'),
    };
    const now = (): number => Math.floor(Date.now() / 1000);

    // The issuer, run by the sender's MSP or a third party: one user and its credential.
    const credential = generateCredential();
    const issuerKeys = join(net.dir, 'issuer', 'keys');
    const issuerFile = parseConfig(issuerConfigSchema, {
      listen: { host: '127.0.0.1', api: 0, admin: 0 },
      tls: net.tls,
      dataDir: join(net.dir, 'issuer', 'data'),
      keyDir: issuerKeys,
      tokensPerPeriod: TOKENS_PER_DAY,
      users: [{ id: 'sender1', credentialSha256: hashCredential(credential) }],
      log: { level: 'silent' },
    });
    const issuer: RunningIssuer = await startIssuer({ ...issuerFile, tls });
    closing.push(() => issuer.close());
    const issuerName = `127.0.0.1:${issuer.api.port}`;
    // `keys publish --name issuer.… --from <keyDir>/issuer-public-keys.json` on the DP.
    await publishKeys(net.dp.store, ISSUER_KEY_NAME, keysIn(issuerKeys, ISSUER_PUBLIC_KEY_FILE), {
      now: now(),
    });
    log(`issuer ${issuerName}: user sender1, ${TOKENS_PER_DAY} tokens a day`);
    log(`  its token key published as KEYCONF at ${ISSUER_KEY_NAME}`);

    // The MSP's resolver and its gateway, which takes that issuer's keys from the tree.
    const resolver: Resolver = createResolver(net.resolverConfig);
    closing.push(() => resolver.close());
    const gatewayKeys = join(net.dir, 'resolver', 'keys');
    mkdirSync(join(net.dir, 'resolver'), { recursive: true });
    const server: RunningResolverServer = await startResolverServer(
      {
        listen: { api: 0 },
        tls,
        gateway: {
          keyDir: gatewayKeys,
          dataDir: join(net.dir, 'resolver', 'spent-tokens'),
          csisPerToken: CSIS_PER_TOKEN,
          issuers: [{ name: issuerName, keyName: ISSUER_KEY_NAME }],
        },
        log: { level: 'silent' },
      },
      resolver,
    );
    closing.push(() => server.close());
    const api = server.api;
    const gateway = server.gateway;
    if (api === undefined || gateway === undefined) throw new Error('the gateway did not start');
    const published = await publishKeys(
      net.dp.store,
      GATEWAY_KEY_NAME,
      keysIn(gatewayKeys, GATEWAY_PUBLIC_KEY_FILE),
      { now: now() },
    );
    log(
      `resolver ${api.url}: gateway at /.well-known/ohttp-gateway, ${CSIS_PER_TOKEN} CSIs a token`,
    );
    log(
      `  its keys (${published.keys.map((k) => k.kind).join(', ')}) published as KEYCONF at ${GATEWAY_KEY_NAME}`,
    );

    // The relay, run by a party independent of the resolver's operator.
    const relay: RunningRelay = await startRelay({
      listen: { host: '127.0.0.1', relay: 0 },
      tls,
      ca: net.caPem,
      gateways: { resolver: `${api.url}/.well-known/ohttp-gateway` },
      queryLog: { path: join(net.dir, 'relay-query.jsonl') },
      log: { level: 'silent' },
    });
    closing.push(() => relay.close());
    const relayResource = `${relay.url}/ohttp/resolver`;
    log(`relay ${relayResource}`);

    // The sender's app: its own validating resolver checks the gateway's key in the tree; the
    // CSIs go only inside encapsulated requests, through the relay.
    const keyResolver = createResolver(net.resolverConfig);
    closing.push(() => keyResolver.close());
    const client = createDiscoveryClient({
      relay: {
        relay: relayResource,
        ca: net.caPem,
        credential,
        keyCheck: { resolver: keyResolver, keyName: GATEWAY_KEY_NAME },
      },
    });
    closing.push(() => client.close());
    const results = await client.discoverMany(CONTACT_BOOK);
    log('');
    for (const line of table(CONTACT_BOOK, results)) log(line);
    log('');

    const spent = gateway.store.size();
    const requests = Math.ceil(CONTACT_BOOK.length / CSIS_PER_TOKEN);
    log(
      `tokens spent: ${spent} (${CONTACT_BOOK.length} CSIs, one token per request of at most ${CSIS_PER_TOKEN}: ${requests} requests)`,
    );
    log(`tokens the issuer signed for sender1: ${await tokensIssued(issuer)}`);

    // All the relay keeps: who sent how many octets where, and the status. No CSI.
    await relay.queryLog?.flush();
    log("the relay's query log:");
    for (const line of readFileSync(join(net.dir, 'relay-query.jsonl'), 'utf8').split('\n')) {
      if (line === '') continue;
      const {
        client: from,
        method,
        route,
        in: octetsIn,
        out,
        status,
      } = JSON.parse(line) as {
        client: string;
        method: string;
        route: string;
        in: number;
        out: number;
        status: number;
      };
      log(`  ${from} ${method} ${route} in ${octetsIn} out ${out} → ${status}`);
    }

    // What a direct lookup at the same resolver's JSON API gives: the same results.
    const direct = createDiscoveryClient({ url: api.url, ca: net.caPem });
    closing.push(() => direct.close());
    const directly = await direct.discoverMany(CONTACT_BOOK);
    log(`same results as a direct lookup: ${same(results, directly) ? 'yes' : 'no'}`);
  } finally {
    for (const close of closing.reverse()) await close().catch(() => undefined);
    await net.close();
  }
}

/** Registers {@link REGISTERED} through the DP's own registrar (recipient-app.ts: over HTTPS). */
async function register(net: LoopbackNetwork): Promise<void> {
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
    const recipient = generateKeyPair();
    const proved = await registrar.prove({ csi });
    const { attestation } = await registrar.confirm({
      csi,
      code: codes.get(proved.csi) ?? '',
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
}

/** The keys of the public-key file `name` in `keyDir`, as `keys publish --from` reads them. */
function keysIn(keyDir: string, name: string): ReturnType<typeof parsePublicKeyFile> {
  return parsePublicKeyFile(readFileSync(join(keyDir, name), 'utf8'));
}

/** `issuer_token_requests_total{outcome="issued"}` from the issuer's admin port. */
async function tokensIssued(issuer: RunningIssuer): Promise<number> {
  if (issuer.admin === undefined) throw new Error('the issuer has no admin port');
  const text = await (await fetch(`${issuer.admin.url}/metrics`)).text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith('issuer_token_requests_total{outcome="issued"}'));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

/** Whether two runs gave the same verified results (TTLs aside). */
function same(a: readonly DiscoveryResult[], b: readonly DiscoveryResult[]): boolean {
  const strip = (results: readonly DiscoveryResult[]): string =>
    JSON.stringify(results.map(({ csi, status, mappings }) => ({ csi, status, mappings })));
  return strip(a) === strip(b);
}

if (isMain(import.meta.url)) {
  main((line) => console.log(line)).catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : String(error));
    process.exitCode = 1;
  });
}
