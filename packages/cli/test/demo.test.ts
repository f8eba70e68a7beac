import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { networkFileJson, networkPaths } from '../src/demo/network-file.js';
import {
  DEMO_EXAMPLES,
  DEMO_SERVERS,
  PORTS_PER_SERVER,
  checkPortsFree,
  planNetwork,
  portUses,
} from '../src/demo/plan.js';
import { mspTarget } from '../src/demo/setup.js';
import { freePort } from '../../../test/helpers/ports.js';
import { createCliFixture } from './fixture.js';

// The in-process pieces of `demo`: the port plan, the refusal of a busy port before anything is
// created, the shape of network.json. The network itself, as child processes, is exercised by
// test/demo-network.test.ts.

const cli = createCliFixture('demo');
afterAll(() => cli.cleanup());

function listen(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

describe('the port plan', () => {
  it('gives each server four consecutive ports from the base, in a fixed order', () => {
    const plan = planNetwork(15300);
    expect(plan.map((s) => s.name)).toEqual(DEMO_SERVERS.map((s) => s.name));
    expect(plan[0]).toMatchObject({
      name: 'root',
      zones: ['mimi.arpa'],
      ports: { dns: 15300, doh: 15301, api: null, admin: 15303 },
    });
    expect(plan.find((s) => s.name === 'dp1202')).toMatchObject({
      parent: 'dp1',
      zones: ['2.0.2.1.e164.mimi.arpa'],
      ports: { dns: 15312, doh: 15313, api: 15314, admin: 15315 },
    });
    expect(plan.find((s) => s.name === 'resolver')).toMatchObject({
      role: 'resolver',
      ports: { dns: 15324, doh: 15325, api: 15326, admin: 15327 },
    });
    // The issuer and the relay speak no DNS: their block's first two ports stay unused.
    expect(plan.slice(-2)).toMatchObject([
      { name: 'issuer', role: 'issuer', ports: { dns: null, doh: null, api: 15330, admin: 15331 } },
      { name: 'relay', role: 'relay', ports: { dns: null, doh: null, api: 15334, admin: 15335 } },
    ]);
    const ports = portUses(plan).map((u) => u.port);
    expect(new Set(ports).size).toBe(ports.length);
    expect(Math.max(...ports)).toBe(15300 + DEMO_SERVERS.length * PORTS_PER_SERVER - 1);
    expect(DEMO_SERVERS.length * PORTS_PER_SERVER).toBe(36);
    for (const unused of [15328, 15329, 15332, 15333]) expect(ports).not.toContain(unused);
    expect(portUses(plan).filter((u) => u.server === 'relay')).toEqual([
      { port: 15334, server: 'relay', listener: 'api', udp: false },
      { port: 15335, server: 'relay', listener: 'admin', udp: false },
    ]);
  });

  it('is the same plan for the same base, so a restart finds its servers where they were', () => {
    expect(planNetwork(20000)).toEqual(planNetwork(20000));
  });

  it.each([0, 80, 65530])('refuses a base of %i whose block leaves 1024–65535', (base) => {
    expect(() => planNetwork(base)).toThrow(/--port-base/);
  });

  it('names a busy port of the relay, and checks no port the relay leaves unused', async () => {
    // The plan whose relay API port (base + 34) is the busy one; the port below it is in the
    // relay's block but unused: holding it is no conflict.
    const { port, error } = await busyPortError(34, (port) => listen(port - 1));
    expect(error).toMatchObject({
      code: 'ERR_CLI_PORT_BUSY',
      message: expect.stringMatching(new RegExp(`^port ${port} \\(TCP, api of relay\\) is in use`)),
    });
  });

  it('names the busy port, its listener and its server', async () => {
    // The plan whose dp44 admin port (base + 7) is the busy one.
    const { port, error } = await busyPortError(7);
    expect(error).toMatchObject({
      code: 'ERR_CLI_PORT_BUSY',
      message: expect.stringContaining(`port ${port} (TCP, admin of dp44)`),
    });
  });
});

/** Tries to plant a busy port in a fresh plan this many times before giving up. */
const BUSY_PORT_ATTEMPTS = 5;

/**
 * Holds a free port at `offset` of a plan based below it and returns what `checkPortsFree`
 * says. The plan's other ports are free only by chance (the system hands ports out to the
 * tests running beside this one): when the error names another port, it tries a new base.
 */
async function busyPortError(
  offset: number,
  extra?: (port: number) => Promise<Server>,
): Promise<{ port: number; error: unknown }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const busy = await listen(port);
    const held = await extra?.(port).catch(() => undefined);
    try {
      const error = await checkPortsFree(planNetwork(port - offset)).then(
        () => undefined,
        (e: unknown) => e,
      );
      const named = error instanceof Error && error.message.startsWith(`port ${port} `);
      if (named || attempt === BUSY_PORT_ATTEMPTS) return { port, error };
    } finally {
      busy.close();
      held?.close();
    }
  }
}

describe('mimi-discovery demo', () => {
  it('fails with exit 2 naming a busy port, before creating anything', async () => {
    const port = await freePort();
    const server = await listen(port);
    try {
      const result = await cli.run(['demo', '--dir', 'net', '--port-base', String(port)]);
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toMatch(
        new RegExp(`port ${port} \\(TCP, dns of root\\).* in use.*\\(ERR_CLI_PORT_BUSY\\)`),
      );
      expect(existsSync(join(cli.dir, 'net'))).toBe(false);
    } finally {
      server.close();
    }
  });

  it('refuses a directory that holds files but no network.json', async () => {
    mkdirSync(join(cli.dir, 'half'));
    writeFileSync(join(cli.dir, 'half', 'stray'), '');
    const result = await cli.run(['demo', '--dir', 'half', '--port-base', '30000']);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/no network\.json.*\(ERR_CLI_EXISTS\)/);
  });

  it('refuses to restart a network made without the issuer and the relay, starting nothing', async () => {
    const old = join(cli.dir, 'older');
    mkdirSync(old);
    writeFileSync(join(old, 'network.json'), JSON.stringify({ version: 1, portBase: 30000 }));
    // Every server of the network as it was before the issuer and the relay joined the plan.
    for (const s of DEMO_SERVERS.filter((x) => x.role !== 'issuer' && x.role !== 'relay')) {
      mkdirSync(join(old, s.name));
      writeFileSync(join(old, s.name, 'config.json'), '{}');
    }
    const result = await cli.run(['demo', '--dir', 'older']);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/without issuer, relay .*remove it.*\(ERR_CLI_NETWORK_FILE\)/);
    expect(existsSync(join(old, 'logs'))).toBe(false);
  });

  it('refuses another --port-base for a network that exists', async () => {
    mkdirSync(join(cli.dir, 'old'));
    writeFileSync(
      join(cli.dir, 'old', 'network.json'),
      JSON.stringify({ version: 1, portBase: 15300 }),
    );
    const result = await cli.run(['demo', '--dir', 'old', '--port-base', '30000']);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/--port-base 15300/);
  });
});

/** Two OHTTP key configs (RFC 9458 §3) as the gateway's public-key file holds them. */
const KEY_CONFIGS = [Uint8Array.of(1, 0, 0x20, 9), Uint8Array.of(0, 0, 0x20, 8)];

describe('network.json', () => {
  it('lists the query log of every server but the issuer when the demo keeps them (demo --query-log)', () => {
    const paths = networkPaths('/srv/net');
    const file = networkFileJson({
      paths,
      portBase: 15300,
      plan: planNetwork(15300),
      examples: DEMO_EXAMPLES,
      pids: new Map(),
      pid: 4242,
      queryLogs: true,
      gatewayKeyConfigs: KEY_CONFIGS,
    });
    expect(file.servers.map((s) => [s.name, s.queryLog])).toEqual(
      file.servers.map((s) => [
        s.name,
        s.name === 'issuer' ? null : `/srv/net/logs/${s.name}.queries.jsonl`,
      ]),
    );
    expect(file.servers.map((s) => s.role)).toContain('resolver');
  });

  it('names the relay, the gateway with its published key configs, and the issuer', () => {
    const file = networkFileJson({
      paths: networkPaths('/srv/net'),
      portBase: 15300,
      plan: planNetwork(15300),
      examples: DEMO_EXAMPLES,
      pids: new Map([['relay', 4250]]),
      pid: 4242,
      queryLogs: false,
      gatewayKeyConfigs: KEY_CONFIGS,
    });
    expect(file.relay).toEqual({
      url: 'https://127.0.0.1:15334',
      ohttp: 'https://127.0.0.1:15334/ohttp/resolver',
      odohProxy: 'https://127.0.0.1:15334/proxy',
      admin: 'http://127.0.0.1:15335',
    });
    expect(file.gateway).toEqual({
      url: 'https://127.0.0.1:15326/.well-known/ohttp-gateway',
      odohConfigs: 'https://127.0.0.1:15326/.well-known/odohconfigs',
      odohTarget: '127.0.0.1:15326',
      keyName: 'resolver.chat.example.email.mimi.arpa',
      publicKeys: '/srv/net/resolver/gateway-keys/gateway-public-keys.json',
      keyConfigs: ['AQAgCQ', 'AAAgCA'],
    });
    expect(file.issuer).toEqual({
      url: 'https://127.0.0.1:15330',
      name: '127.0.0.1:15330',
      keyName: 'issuer.chat.example.email.mimi.arpa',
      publicKeys: '/srv/net/issuer/keys/issuer-public-keys.json',
      tokensPerPeriod: 50,
      periodSeconds: 86400,
      csisPerToken: 100,
      users: [
        { id: 'sender1', credential: '/srv/net/issuer/sender1.credential' },
        { id: 'sender2', credential: '/srv/net/issuer/sender2.credential' },
      ],
    });
    expect(file.servers.find((s) => s.name === 'relay')).toEqual({
      name: 'relay',
      role: 'relay',
      description: 'oblivious relay, run by a party independent of the resolver',
      ranges: [],
      zones: [],
      parent: null,
      udp: null,
      tcp: null,
      doh: null,
      api: 'https://127.0.0.1:15334',
      admin: 'http://127.0.0.1:15335',
      config: '/srv/net/relay/config.json',
      log: '/srv/net/logs/relay.log',
      queryLog: null,
      pid: 4250,
    });
    expect(file.servers.find((s) => s.name === 'issuer')).toMatchObject({
      role: 'issuer',
      udp: null,
      doh: null,
      api: 'https://127.0.0.1:15330',
      admin: 'http://127.0.0.1:15331',
    });
  });

  it('lists every server, the files to trust and the examples with their expected results', () => {
    const paths = networkPaths('/srv/net');
    const plan = planNetwork(15300);
    const file = networkFileJson({
      paths,
      portBase: 15300,
      plan,
      examples: DEMO_EXAMPLES,
      pids: new Map([['dp44', 4243]]),
      pid: 4242,
      queryLogs: false,
      gatewayKeyConfigs: KEY_CONFIGS,
    });
    expect(file).toMatchObject({
      version: 1,
      apex: 'mimi.arpa',
      portBase: 15300,
      pid: 4242,
      ca: '/srv/net/ca/ca.pem',
      trustAnchor: { ds: '/srv/net/root.key', bind: '/srv/net/root-anchors.conf' },
      hints: '/srv/net/root-hints.json',
      resolver: {
        api: 'https://127.0.0.1:15326',
        doh: 'https://127.0.0.1:15325/dns-query',
        udp: { host: '127.0.0.1', port: 15324 },
        tcp: { host: '127.0.0.1', port: 15324 },
        admin: 'http://127.0.0.1:15327',
      },
    });
    expect(file.servers.find((s) => s.name === 'dp44')).toEqual({
      name: 'dp44',
      role: 'dp',
      description: 'DP for +44',
      ranges: ['+44'],
      zones: ['4.4.e164.mimi.arpa'],
      parent: 'root',
      udp: { host: '127.0.0.1', port: 15304 },
      tcp: { host: '127.0.0.1', port: 15304 },
      doh: 'https://127.0.0.1:15305/dns-query',
      api: 'https://127.0.0.1:15306',
      admin: 'http://127.0.0.1:15307',
      config: '/srv/net/dp44/config.json',
      log: '/srv/net/logs/dp44.log',
      queryLog: null,
      pid: 4243,
    });
    expect(file.servers.find((s) => s.name === 'root')).toMatchObject({ api: null, pid: null });
    expect(file.examples.map((e) => [e.canonical, e.expect])).toEqual([
      ['tel:+442079460018', 'found'],
      ['tel:+12025550100', 'found'],
      ['tel:+14155550100', 'empty'],
      ['mailto:dave@example.com', 'found'],
      ['tel:+442079460999', 'none'],
      ['mailto:nobody@example.com', 'none'],
    ]);
    expect(JSON.parse(JSON.stringify(file))).toEqual(file);
  });

  it('points the MAPREF of a number at its name under e164 in the MSP’s zone', () => {
    expect(mspTarget('+44 20 7946 0018')).toBe(
      '8.1.0.0.6.4.9.7.0.2.4.4.e164.chat.example.email.mimi.arpa',
    );
  });
});
