import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import { Profiler, summarizeProfile } from './profile.js';
import {
  createLogger,
  keyPairFromSeed,
  parseTrustAnchor,
  sign,
  verify,
} from '@mimi-discovery/common';
import {
  createResolver,
  startResolverServer,
  type Resolver,
  type ResolverConfig,
  type GatewaySettings,
  type ResolverServerSettings,
  type RunningResolverServer,
} from '@mimi-discovery/resolver';

/**
 * Our resolver under test, in a process of its own so that its CPU time can be read from /proc:
 * `createResolver` behind `startResolverServer` (UDP, TCP, DoH, the JSON API, admin) on
 * 127.0.0.1, free ports, from the JSON spec file in argv[2] ({@link ResolverSpec}). It writes
 * one JSON line `{"event":"ready",…}` with its listeners and then obeys JSON lines on stdin:
 *
 *   {"cmd":"fresh","transport":"doh"|"dns","rootCopy":bool}
 *                                            a new resolver (empty caches, no connections, no
 *                                            RTTs) behind new listeners on the same ports; with
 *                                            `rootCopy`, it first loads its copy of the root's
 *                                            zone (AXFR), as a resolver that has run a while has
 *                                            it; without, it keeps none (`rootCopy: false`)
 *   {"cmd":"stats"}                          the current resolver's `stats()`
 *   {"cmd":"flush"}                          empties its caches (and the front ends'), keeping
 *                                            its connections: `flushCache()`
 *   {"cmd":"gateway","settings":{…}}         the front ends anew on the same ports, with the
 *                                            oblivious gateway of `settings` (`GatewaySettings`)
 *                                            on the JSON API's port, kept by every later `fresh`
 *   {"cmd":"verify","seconds":S}             Ed25519 verifications/s of `verify` in this process
 *   {"cmd":"profile-start"}                  starts a CPU profile of this process
 *   {"cmd":"profile-stop","phase":"…"}       stops it and answers its summary
 *   {"cmd":"stop"}
 *
 * A fresh resolver inside a running process, rather than a new process, measures cold caches
 * without also measuring a cold JIT: a new Node.js process runs its first resolution mostly in
 * the interpreter, which is not what a long-running resolver with an empty cache does.
 */

/** What the bench hands this process. */
export interface ResolverSpec {
  apex: string;
  rootServers: ResolverConfig['rootServers'];
  /** Trust anchor text (`formatTrustAnchor`). */
  trustAnchor: string;
  /** PEM of the CA of every server's DoH certificate. */
  ca: string;
  /** Plain-DNS port of the DP, for `transport: "dns"`. */
  dnsPort: number;
  /** PEM files of this server's certificate and key (DoH, JSON API). */
  certFile: string;
  keyFile: string;
}

type Command =
  | { cmd: 'fresh'; transport: 'doh' | 'dns'; rootCopy?: boolean }
  | { cmd: 'stats' }
  | { cmd: 'flush' }
  | { cmd: 'gateway'; settings: GatewaySettings }
  | { cmd: 'verify'; seconds: number }
  | { cmd: 'profile-start' }
  | { cmd: 'profile-stop'; phase: string }
  | { cmd: 'stop' };

function reply(value: object): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/**
 * Ed25519 verifications per second (wall clock and CPU) on this thread, of a 512-octet message
 * (about a MAP RRset's size).
 */
function verificationRate(seconds: number): object {
  const key = keyPairFromSeed(new Uint8Array(32).fill(0x21));
  const message = new Uint8Array(512).fill(0x5a);
  const signature = sign(message, key.secretKey);
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  const cpu = process.cpuUsage();
  let verifications = 0;
  // Batches of 100 keep the clock reads out of the measured cost.
  while (performance.now() < deadline) {
    for (let i = 0; i < 100; i++) {
      if (!verify(signature, message, key.publicKey)) throw new Error('verify failed');
    }
    verifications += 100;
  }
  const elapsed = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const cpuSeconds = (used.user + used.system) / 1e6;
  return {
    event: 'verified',
    verifications,
    seconds: elapsed,
    perSecond: verifications / elapsed,
    // Per CPU second as well: on a shared machine the wall-clock rate also measures the load.
    perCpuSecond: verifications / cpuSeconds,
  };
}

async function main(specFile: string): Promise<void> {
  const spec = JSON.parse(readFileSync(specFile, 'utf8')) as ResolverSpec;
  const log = createLogger('resolver', { level: 'warn' });
  // Parsed once: every fresh resolver of this process starts from the same anchor.
  const trustAnchor = parseTrustAnchor(spec.trustAnchor);
  const make = (transport: 'doh' | 'dns', rootCopy = false): Resolver =>
    createResolver(
      {
        rootServers: spec.rootServers,
        trustAnchor,
        ca: spec.ca,
        transport,
        ...(transport === 'dns' ? { dnsPort: spec.dnsPort } : {}),
        rootCopy: rootCopy ? {} : false,
      },
      { log },
    );
  const tls = {
    cert: readFileSync(spec.certFile, 'utf8'),
    key: readFileSync(spec.keyFile, 'utf8'),
  };
  // The oblivious gateway, once the relay benchmark asks for it (`gateway`).
  let gateway: GatewaySettings | undefined;
  const serve = (
    resolver: Resolver,
    listen: ResolverServerSettings['listen'],
  ): Promise<RunningResolverServer> =>
    startResolverServer(
      // The bench's clients are on loopback and ask for tens of thousands of new CSIs: they are
      // measured, not limited.
      {
        apex: spec.apex,
        listen,
        tls,
        limits: { clients: { exempt: ['127.0.0.0/8'] } },
        ...(gateway === undefined ? {} : { gateway }),
      },
      resolver,
      { log },
    );
  let current = make('doh');
  let server = await serve(current, {
    host: '127.0.0.1',
    udp: 0,
    tcp: 0,
    doh: 0,
    api: 0,
    admin: 0,
  });
  // `fresh` starts the front ends anew on the same ports: they hold caches of their own (the
  // DNS front ends' answer cache), which a cold resolution must not find warm either.
  const ports = {
    host: '127.0.0.1',
    udp: server.dns?.udp?.port ?? null,
    tcp: server.dns?.tcp?.port ?? null,
    doh: server.dns?.doh?.port ?? null,
    api: server.api?.port ?? null,
    admin: server.admin?.port ?? null,
  };
  reply({
    event: 'ready',
    pid: process.pid,
    udp: server.dns?.udp?.port,
    tcp: server.dns?.tcp?.port,
    doh: server.dns?.doh?.url,
    api: server.api?.url,
    admin: server.admin?.url,
  });
  const lines = createInterface({ input: process.stdin });
  const profiler = new Profiler();
  for await (const line of lines) {
    const command = JSON.parse(line) as Command;
    if (command.cmd === 'fresh') {
      await server.close();
      await current.close();
      current = make(command.transport, command.rootCopy === true);
      const copy = command.rootCopy === true ? await current.refreshRootCopy() : undefined;
      if (copy !== undefined && copy.state !== 'valid') {
        throw new Error(`the root copy did not load: ${JSON.stringify(copy)}`);
      }
      server = await serve(current, ports);
      reply({ event: 'fresh', transport: command.transport, rootCopy: copy });
    } else if (command.cmd === 'gateway') {
      // The resolver and its cache stay: only the front ends start again, now with the gateway.
      gateway = command.settings;
      await server.close();
      server = await serve(current, ports);
      if (server.gateway === undefined) throw new Error('the gateway did not start');
      reply({ event: 'gateway' });
    } else if (command.cmd === 'flush') {
      server.flushCache();
      reply({ event: 'flushed' });
    } else if (command.cmd === 'stats') {
      reply({ event: 'stats', ...current.stats() });
    } else if (command.cmd === 'verify') {
      reply(verificationRate(command.seconds));
    } else if (command.cmd === 'profile-start') {
      await profiler.start();
      reply({ event: 'profiling' });
    } else if (command.cmd === 'profile-stop') {
      reply({ event: 'profile', summary: summarizeProfile(command.phase, await profiler.stop()) });
    } else {
      break;
    }
  }
  lines.close();
  await server.close();
  await current.close();
  reply({ event: 'stopped' });
}

const specFile = process.argv[2];
if (specFile === undefined) throw new Error('usage: resolver-server.ts SPEC_FILE');
await main(specFile);
