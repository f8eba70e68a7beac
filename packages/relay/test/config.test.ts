import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, parseConfig } from '@mimi-discovery/common';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_RELAY_CONNECT_TIMEOUT_MS,
  DEFAULT_RELAY_FORWARDS_PER_CLIENT,
  DEFAULT_RELAY_FORWARD_TIMEOUT_MS,
  DEFAULT_RELAY_GATEWAY_CONNECTIONS,
  DEFAULT_RELAY_IDLE_TIMEOUT_MS,
  DEFAULT_RELAY_MAX_CONNECTIONS,
  DEFAULT_RELAY_MAX_FORWARDS,
  DEFAULT_RELAY_MAX_REQUEST_OCTETS,
  DEFAULT_RELAY_MAX_RESPONSE_OCTETS,
  DEFAULT_RELAY_REQUEST_BURST,
  DEFAULT_RELAY_REQUEST_TIMEOUT_MS,
  DEFAULT_RELAY_REQUESTS_PER_SECOND,
  checkRelayForwarding,
  createRelayRoutes,
  loadRelayConfig,
  relayConfigSchema,
  resolveRelayLimits,
  routeRequest,
  startRelay,
  targetAuthority,
} from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'mimi-relay-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MINIMAL = {
  listen: { relay: 0 },
  tls: { cert: 'cert.pem', key: 'key.pem' },
  gateways: { resolver: 'https://127.0.0.1:8453/.well-known/ohttp-gateway' },
};

/** The message of the `ConfigError` that `raw` is refused with. */
function refusal(raw: unknown): string {
  try {
    parseConfig(relayConfigSchema, raw, 'relay.json');
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).message;
  }
  throw new Error('accepted');
}

describe('the relay config schema', () => {
  it('fills every limit with its default', () => {
    const config = parseConfig(relayConfigSchema, MINIMAL);
    expect(config.listen).toEqual({ host: '127.0.0.1', relay: 0, admin: null });
    expect(config.odohTargets).toEqual([]);
    expect(config.limits).toEqual({
      maxRequestOctets: DEFAULT_RELAY_MAX_REQUEST_OCTETS,
      maxResponseOctets: DEFAULT_RELAY_MAX_RESPONSE_OCTETS,
      forwardTimeoutMs: DEFAULT_RELAY_FORWARD_TIMEOUT_MS,
      connectTimeoutMs: DEFAULT_RELAY_CONNECT_TIMEOUT_MS,
      maxForwards: DEFAULT_RELAY_MAX_FORWARDS,
      forwardsPerClient: DEFAULT_RELAY_FORWARDS_PER_CLIENT,
      gatewayConnections: DEFAULT_RELAY_GATEWAY_CONNECTIONS,
      requestsPerSecond: DEFAULT_RELAY_REQUESTS_PER_SECOND,
      requestBurst: DEFAULT_RELAY_REQUEST_BURST,
      maxClients: 100_000,
      exempt: [],
      requestTimeoutMs: DEFAULT_RELAY_REQUEST_TIMEOUT_MS,
      idleTimeoutMs: DEFAULT_RELAY_IDLE_TIMEOUT_MS,
      maxConnections: DEFAULT_RELAY_MAX_CONNECTIONS,
    });
  });

  it.each([
    [{ ...MINIMAL, gateway: {} }, 'unknown key "gateway" in the top level'],
    [{ ...MINIMAL, listen: { relay: 70000 } }, 'listen.relay: expected a port number 0–65535'],
    [{ ...MINIMAL, listen: {} }, 'listen.relay: expected a port number 0–65535'],
    [{ ...MINIMAL, tls: undefined }, 'tls: required'],
    [
      { ...MINIMAL, gateways: { Resolver: 'https://127.0.0.1/' } },
      'gateways.Resolver: a gateway name is a lowercase label',
    ],
    [
      { ...MINIMAL, gateways: { resolver: 'http://127.0.0.1/.well-known/ohttp-gateway' } },
      'gateways.resolver: expected an https URL',
    ],
    [
      { ...MINIMAL, odohTargets: ['https://resolver.example/dns-query'] },
      'odohTargets[0]: expected host:port',
    ],
    [
      { ...MINIMAL, gateways: {} },
      'gateways: give at least one gateway or ODoH target: the relay would forward nothing',
    ],
    [
      { ...MINIMAL, limits: { forwardsPerClient: 300, maxForwards: 200 } },
      'limits.forwardsPerClient: must not exceed maxForwards',
    ],
    [
      { ...MINIMAL, limits: { connectionsPerClient: 9, maxConnections: 8 } },
      'limits.connectionsPerClient: must not exceed maxConnections',
    ],
    [
      { ...MINIMAL, limits: { maxRequestOctets: 0 } },
      'limits.maxRequestOctets: must be at least 1',
    ],
    [{ ...MINIMAL, limits: { forwardTimeoutMs: 1.5 } }, 'limits.forwardTimeoutMs: expected'],
    [{ ...MINIMAL, limits: { exempt: ['10.0.0.0/33'] } }, 'limits.exempt[0]: expected a CIDR'],
    [{ ...MINIMAL, limits: { maxResponse: 1 } }, 'unknown key "maxResponse" in limits'],
    [{ ...MINIMAL, queryLog: { path: 'q.jsonl', peer: true } }, 'unknown key "peer" in queryLog'],
  ])('refuses %j: %s', (raw, message) => {
    expect(refusal(raw)).toContain(message);
  });

  it('holds settings given in code to the same rules', async () => {
    expect(() => resolveRelayLimits({ forwardsPerClient: 5, maxForwards: 4 })).toThrow(
      'limits: forwardsPerClient: must not exceed maxForwards',
    );
    expect(() => checkRelayForwarding({})).toThrow('give at least one gateway or ODoH target');
    await expect(
      startRelay({
        listen: { relay: 0 },
        tls: { cert: '', key: '' },
        gateways: { resolver: 'http://127.0.0.1/' },
      }),
    ).rejects.toThrow('gateways.resolver: expected an https URL');
  });
});

describe('loadRelayConfig', () => {
  it('reads the TLS files and the CA file relative to the config, and the query log path', async () => {
    writeFileSync(join(dir, 'cert.pem'), 'CERT');
    writeFileSync(join(dir, 'key.pem'), 'KEY');
    writeFileSync(
      join(dir, 'ca.pem'),
      '-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n',
    );
    writeFileSync(
      join(dir, 'relay.json'),
      JSON.stringify({ ...MINIMAL, ca: 'ca.pem', queryLog: { path: 'q.jsonl' } }),
    );
    const config = await loadRelayConfig(join(dir, 'relay.json'));
    expect(config.tls).toEqual({ cert: 'CERT', key: 'KEY' });
    expect(config.ca).toContain('BEGIN CERTIFICATE');
    expect(config.queryLog).toEqual({ path: join(dir, 'q.jsonl'), bufferBytes: 1_048_576 });
    expect(config.source).toBe(join(dir, 'relay.json'));
  });

  it('names the file that cannot be read, and a CA file that is not PEM', async () => {
    writeFileSync(
      join(dir, 'missing.json'),
      JSON.stringify({ ...MINIMAL, tls: { cert: 'nope.pem', key: 'key.pem' } }),
    );
    await expect(loadRelayConfig(join(dir, 'missing.json'))).rejects.toMatchObject({
      code: 'ERR_CONFIG_READ',
      message: expect.stringContaining('cannot read the tls.cert'),
    });
    writeFileSync(join(dir, 'not-ca.txt'), 'hello');
    writeFileSync(join(dir, 'bad-ca.json'), JSON.stringify({ ...MINIMAL, ca: 'not-ca.txt' }));
    await expect(loadRelayConfig(join(dir, 'bad-ca.json'))).rejects.toMatchObject({
      code: 'ERR_CONFIG_INVALID',
      message: expect.stringContaining('ca: not a PEM certificate file'),
    });
    writeFileSync(join(dir, 'syntax.json'), '{ "listen": ');
    await expect(loadRelayConfig(join(dir, 'syntax.json'))).rejects.toMatchObject({
      code: 'ERR_CONFIG_SYNTAX',
    });
  });
});

describe('routes', () => {
  it.each([
    ['Resolver.Example', 'resolver.example:443'],
    ['resolver.example:443', 'resolver.example:443'],
    ['resolver.example:8443', 'resolver.example:8443'],
    ['127.0.0.1:8453', '127.0.0.1:8453'],
    ['[::1]:8453', '[::1]:8453'],
    ['[::1]', '[::1]:443'],
  ])('normalises the target host %s to %s', (text, authority) => {
    expect(targetAuthority(text)).toBe(authority);
  });

  it.each(['', 'a/b', 'user@host', 'host:99999', 'host?x', 'host#x', 'a b', 'host:port'])(
    'refuses %j as a target host',
    (text) => {
      expect(targetAuthority(text)).toBeUndefined();
    },
  );

  it('routes a gateway name, the proxy and nothing else', () => {
    const routes = createRelayRoutes(
      { resolver: 'https://127.0.0.1:8453/.well-known/ohttp-gateway' },
      ['resolver.example'],
    );
    expect(routeRequest(routes, '/ohttp/resolver')).toMatchObject({
      kind: 'ohttp',
      gateway: 'resolver',
    });
    expect(routeRequest(routes, '/ohttp/resolver/x').kind).toBe('not-found');
    expect(routeRequest(routes, '/ohttp/').kind).toBe('not-found');
    expect(routeRequest(routes, '/v1/discover').kind).toBe('not-found');
    const odoh = routeRequest(
      routes,
      '/proxy?targethost=RESOLVER.example%3A443&targetpath=%2Fdns-query',
    );
    expect(odoh).toMatchObject({ kind: 'odoh', authority: 'resolver.example:443' });
    expect(odoh.kind === 'odoh' ? odoh.url.href : '').toBe('https://resolver.example/dns-query');
    expect(routeRequest(routes, '/proxy?targethost=other.example&targetpath=%2Fdns-query')).toEqual(
      {
        kind: 'not-allowed',
        authority: 'other.example:443',
      },
    );
  });
});
