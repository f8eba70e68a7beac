import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { DEFAULT_APEX, parseRange } from '@mimi-discovery/common';
import { failure, usageError } from '../errors.js';

/**
 * The shape of the demonstration network that `mimi-discovery demo` builds, as data: which
 * servers, which ranges each serves, who delegates to whom, which ports each listens on, and
 * which example CSIs it holds with the result a sender must get for each.
 *
 * ```
 *   mimi.arpa                            root directory
 *     ├── 4.4.e164.mimi.arpa             DP "dp44"        (+44)
 *     ├── 1.e164.mimi.arpa               DP "dp1"         (+1)
 *     │     └── 2.0.2.1.e164.mimi.arpa   DP "dp1202"      (+1202, delegated by dp1)
 *     ├── example.com.email.mimi.arpa    DP "dp-email"    (@example.com)
 *     └── chat.example.email.mimi.arpa   DP "dp-msp", run by the MSP chat.example: MAPREF targets
 *   resolver                             walks the tree from the root hints and trust anchor;
 *                                        its gateway takes requests through the relay
 *   issuer                               Privacy Pass issuer of the MSP chat.example (tokens)
 *   relay                                oblivious relay, run by a party independent of the
 *                                        resolver (design §7, R6)
 * ```
 *
 * Ports are fixed, so that the root hints, the delegations (glue, `_dns` SVCB), the published
 * keys (KEYCONF, the issuer's name) and the file `network.json` stay true across restarts:
 * server number i (in the order of {@link DEMO_SERVERS}) takes the four ports `base + 4i` (plain
 * DNS, UDP and TCP), `+1` (DoH), `+2` (registration API, DPs only; the resolver's JSON API; the
 * issuer's token API; the relay's HTTPS port) and `+3` (admin). The issuer and the relay speak
 * no DNS: their first two ports stay unused, so that every server's block starts at `base + 4i`.
 * With the default base 15300: root 15300–15303, dp44 15304–15307, …, resolver 15324–15327,
 * issuer 15330–15331, relay 15334–15335.
 */

/** Default first port of the block the network listens on. */
export const DEFAULT_PORT_BASE = 15300;
/** Ports each server takes from the block. */
export const PORTS_PER_SERVER = 4;
/** The address every server of the network binds to and publishes as glue. */
export const DEMO_HOST = '127.0.0.1';
/** The namespace apex of the network. */
export const DEMO_APEX = DEFAULT_APEX;

/** What a server of the network does. */
export type DemoRole = 'root' | 'dp' | 'resolver' | 'issuer' | 'relay';

/** Whether servers of `role` speak DNS (plain and DoH): the root, the DPs and the resolver. */
export function speaksDns(role: DemoRole): boolean {
  return role === 'root' || role === 'dp' || role === 'resolver';
}

/** What one server of the network is. */
export interface DemoServerSpec {
  /** Short name; also the server's directory under the network's directory. */
  readonly name: string;
  readonly role: DemoRole;
  /** Ranges served, as people type them (`+44`, `@example.com`); none but for DPs. */
  readonly ranges: readonly string[];
  /** The server whose zone delegates this server's ranges; undefined but for DPs. */
  readonly parent?: string;
  /** One line on what it stands for. */
  readonly description: string;
}

/** The servers, in port order (see the module comment). */
export const DEMO_SERVERS: readonly DemoServerSpec[] = Object.freeze([
  { name: 'root', role: 'root', ranges: [], description: 'root directory' },
  { name: 'dp44', role: 'dp', ranges: ['+44'], parent: 'root', description: 'DP for +44' },
  { name: 'dp1', role: 'dp', ranges: ['+1'], parent: 'root', description: 'DP for +1' },
  {
    name: 'dp1202',
    role: 'dp',
    ranges: ['+1202'],
    parent: 'dp1',
    description: 'DP for +1202, sub-delegated by the +1 DP',
  },
  {
    name: 'dp-email',
    role: 'dp',
    ranges: ['@example.com'],
    parent: 'root',
    description: 'DP for @example.com',
  },
  {
    name: 'dp-msp',
    role: 'dp',
    ranges: ['@chat.example'],
    parent: 'root',
    description: 'DP run by the MSP chat.example, where MAPREF records point',
  },
  { name: 'resolver', role: 'resolver', ranges: [], description: 'resolver' },
  {
    name: 'issuer',
    role: 'issuer',
    ranges: [],
    description: 'Privacy Pass issuer of the MSP chat.example',
  },
  {
    name: 'relay',
    role: 'relay',
    ranges: [],
    description: 'oblivious relay, run by a party independent of the resolver',
  },
] satisfies DemoServerSpec[]);

/**
 * The ports of one server: `dns` and `doh` are null for the issuer and the relay (no DNS),
 * `api` is null for the root. `api` is the issuer's token API and the relay's HTTPS port.
 */
export interface DemoPorts {
  readonly dns: number | null;
  readonly doh: number | null;
  readonly api: number | null;
  readonly admin: number;
}

/** A server of the plan with its ports and zones. */
export interface PlannedServer extends DemoServerSpec {
  readonly ports: DemoPorts;
  /** Zone names served (the apex for the root). */
  readonly zones: readonly string[];
}

/** Checks `--port-base` and returns the planned servers. */
export function planNetwork(portBase: number): PlannedServer[] {
  const last = portBase + DEMO_SERVERS.length * PORTS_PER_SERVER - 1;
  if (!Number.isSafeInteger(portBase) || portBase < 1024 || last > 65_535) {
    throw usageError(
      'ERR_USAGE',
      `--port-base ${portBase}: the network needs ${DEMO_SERVERS.length * PORTS_PER_SERVER} ports from it, within 1024–65535`,
    );
  }
  return DEMO_SERVERS.map((spec, i) => {
    const first = portBase + i * PORTS_PER_SERVER;
    const zones =
      spec.role === 'root'
        ? [DEMO_APEX]
        : spec.ranges.map((range) => parseRange(range, DEMO_APEX).zone);
    const dns = speaksDns(spec.role);
    return {
      ...spec,
      zones,
      ports: {
        dns: dns ? first : null,
        doh: dns ? first + 1 : null,
        api: spec.role === 'root' ? null : first + 2,
        admin: first + 3,
      },
    };
  });
}

/** One port to check: what it is for, and whether UDP is used on it as well as TCP. */
export interface PortUse {
  readonly port: number;
  readonly server: string;
  readonly listener: 'dns' | 'doh' | 'api' | 'admin';
  readonly udp: boolean;
}

/** Every port the plan listens on. */
export function portUses(plan: readonly PlannedServer[]): PortUse[] {
  return plan.flatMap((s) => {
    const uses: PortUse[] = [];
    if (s.ports.dns !== null) {
      uses.push({ port: s.ports.dns, server: s.name, listener: 'dns', udp: true });
    }
    if (s.ports.doh !== null) {
      uses.push({ port: s.ports.doh, server: s.name, listener: 'doh', udp: false });
    }
    if (s.ports.api !== null) {
      uses.push({ port: s.ports.api, server: s.name, listener: 'api', udp: false });
    }
    uses.push({ port: s.ports.admin, server: s.name, listener: 'admin', udp: false });
    return uses;
  });
}

/**
 * Fails with `ERR_CLI_PORT_BUSY` (exit 2) naming the first port of the plan that something
 * else holds on {@link DEMO_HOST}, before any server is started: a clear message beats a child
 * process dying with `EADDRINUSE` half-way through.
 */
export async function checkPortsFree(
  plan: readonly PlannedServer[],
  host = DEMO_HOST,
): Promise<void> {
  // Every busy port is named at once, so one attempt tells the operator all that is in the way.
  const busy: string[] = [];
  for (const use of portUses(plan)) {
    const tcp = await tcpFree(host, use.port);
    const udp = tcp && use.udp ? await udpFree(host, use.port) : true;
    if (!tcp || !udp) {
      busy.push(`port ${use.port} (${tcp ? 'UDP' : 'TCP'}, ${use.listener} of ${use.server})`);
    }
  }
  if (busy.length > 0) {
    throw failure(
      'ERR_CLI_PORT_BUSY',
      `${busy.join(', ')} ${busy.length === 1 ? 'is' : 'are'} in use on ${host}: stop what holds ${busy.length === 1 ? 'it' : 'them'}, or choose another --port-base`,
    );
  }
}

function tcpFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

function udpFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    socket.once('error', () => resolve(false));
    socket.bind({ port, address: host, exclusive: true }, () => socket.close(() => resolve(true)));
  });
}

/** An example recipient, or a CSI nobody registered, with what a sender must get for it. */
export interface DemoExample {
  /** The CSI as people type it. */
  readonly csi: string;
  readonly expect: 'found' | 'empty' | 'none';
  /** For `found`: the MSPs of every verified mapping, sorted, without duplicates. */
  readonly providers: readonly string[];
  /** For `found`: the zones that served the mappings, sorted. */
  readonly zones: readonly string[];
  /** What the example shows. */
  readonly note: string;
}

/** The zone of the MSP-run DP. */
export const MSP_ZONE = parseRange('@chat.example', DEMO_APEX).zone;

/** The example CSIs, and the result each must have. */
export const DEMO_EXAMPLES: readonly DemoExample[] = Object.freeze([
  {
    csi: '+44 20 7946 0018',
    expect: 'found',
    providers: ['chat.example', 'text.example'],
    zones: ['4.4.e164.mimi.arpa', MSP_ZONE],
    note: 'registered at the +44 DP; a MAPREF adds the mapping published by the MSP chat.example',
  },
  {
    csi: '+1 202 555 0100',
    expect: 'found',
    providers: ['text.example'],
    zones: ['2.0.2.1.e164.mimi.arpa'],
    note: 'registered at the +1202 DP, which the +1 DP delegated',
  },
  {
    csi: '+1 415 555 0100',
    expect: 'empty',
    providers: [],
    zones: [],
    note: 'registered at the +1 DP and opted out: a mapping that lists no MSP',
  },
  {
    csi: 'dave@example.com',
    expect: 'found',
    providers: ['chat.example'],
    zones: ['example.com.email.mimi.arpa'],
    note: 'registered at the @example.com DP',
  },
  {
    csi: '+44 20 7946 0999',
    expect: 'none',
    providers: [],
    zones: [],
    note: 'nobody registered: authenticated denial',
  },
  {
    csi: 'nobody@example.com',
    expect: 'none',
    providers: [],
    zones: [],
    note: 'nobody registered: authenticated denial',
  },
] satisfies DemoExample[]);

/**
 * Where the gateway's keys are published: a service name in the zone of the MSP chat.example,
 * which runs the resolver (KEYCONF kinds `ohttp` and `odoh`, and the `_dns` SVCB with `ohttp`).
 */
export const GATEWAY_KEY_NAME = `resolver.${MSP_ZONE}`;
/** Where the issuer's token keys are published (KEYCONF kind `private-token`). */
export const ISSUER_KEY_NAME = `issuer.${MSP_ZONE}`;
/** The relay's resource for the resolver's gateway: `/ohttp/<name>`. */
export const RELAY_GATEWAY_NAME = 'resolver';
/** The issuer's users, each with a credential file `DIR/issuer/<id>.credential`. */
export const DEMO_ISSUER_USERS: readonly string[] = Object.freeze(['sender1', 'sender2']);
/**
 * Tokens one user gets per period. Each start of the network spends one of `sender1`'s on its
 * check through the relay; 50 a day leaves room for a tour, and runs out soon enough for
 * enumeration through the relay to be seen stopping.
 */
export const DEMO_TOKENS_PER_PERIOD = 50;
/** The issuer's quota period: a day. */
export const DEMO_PERIOD_SECONDS = 86_400;
