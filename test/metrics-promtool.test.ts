import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildQuery, csiToName, parseCsi, queryUdp, silentLogger } from '@mimi-discovery/common';
import {
  createResolver,
  startResolverServer,
  type Resolver,
  type RunningResolverServer,
} from '@mimi-discovery/resolver';
import { PHONE_ZONE, buildNetwork, type Network } from './helpers/network.js';

// Design §10: Prometheus metrics, lint-clean. Every server's `/metrics` — the root directory,
// a DP and the resolver, started for real on 127.0.0.1 and asked something first so that
// labelled counters and histograms have series — passes `promtool check metrics` (Debian
// package `prometheus`), process metrics of Node included.

const PROMTOOL_PACKAGE = 'prometheus';
const promtool = spawnSync('sh', ['-c', 'command -v promtool']).status === 0;
if (!promtool) {
  console.warn(
    `promtool not installed (Debian package ${PROMTOOL_PACKAGE}): skipping the metrics lint`,
  );
}

/** `promtool check metrics` over `text`: its exit status and what it reported. */
function checkMetrics(text: string): { status: number | null; output: string } {
  const result = spawnSync('promtool', ['check', 'metrics'], {
    input: text,
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { status: result.status, output: `${result.stdout}${result.stderr}`.trim() };
}

async function scrape(adminUrl: string): Promise<string> {
  const response = await fetch(`${adminUrl}/metrics`);
  expect(response.status).toBe(200);
  return response.text();
}

describe.skipIf(!promtool)('promtool check metrics', () => {
  let net: Network;
  let resolver: Resolver | undefined;
  let server: RunningResolverServer | undefined;

  beforeAll(async () => {
    net = await buildNetwork();
    resolver = createResolver(
      {
        rootServers: [{ name: `ns1.${net.apex}`, addresses: ['127.0.0.1'], doh: net.root.dohUrl }],
        trustAnchor: net.trustAnchor,
        ca: net.caPem,
      },
      { log: silentLogger },
    );
    server = await startResolverServer({ listen: { udp: 0, admin: 0 } }, resolver, {
      log: silentLogger,
    });
    // One resolution through the whole tree: the resolver's front end, cache and validator
    // count it, and the root and the DP each answer it over DoH.
    const udp = server.dns?.udp;
    if (udp === undefined) throw new Error('the resolver has no UDP listener');
    const name = csiToName(parseCsi('+44 20 7946 0999'));
    expect(name.endsWith(PHONE_ZONE)).toBe(true);
    const response = await queryUdp(udp, buildQuery(name, 'MAP', { dnssecOk: true }));
    // A validated denial: the +44 zone holds no number under +442, so QNAME minimisation stops
    // at `2.4.4.e164…` (RFC 8020) and the name is NXDOMAIN, whatever DO says.
    expect({ rcode: response.rcode, ad: response.flags.ad }).toEqual({
      rcode: 'NXDOMAIN',
      ad: true,
    });
    // And one plain-DNS query straight to the DP.
    await queryUdp(net.phone.udp, buildQuery(PHONE_ZONE, 'SOA'));
  }, 60_000);

  afterAll(async () => {
    await server?.close();
    await resolver?.close();
    await net?.close();
  });

  it('rejects what it should: a gauge named like the series of a histogram', () => {
    const bad = '# HELP authoritative_zones_count Zones\n# TYPE authoritative_zones_count gauge\n';
    const { status, output } = checkMetrics(`${bad}authoritative_zones_count 1\n`);
    expect(status).not.toBe(0);
    expect(output).toContain('_count');
  });

  it.each([
    ['the root directory', () => net.root.adminUrl, 'authoritative_queries_total'],
    ['a Discovery Provider', () => net.phone.adminUrl, 'authoritative_queries_total'],
    ['the resolver', () => server?.admin?.url ?? '', 'resolver_resolution_duration_seconds'],
  ])('passes on the /metrics of %s', async (_server, adminUrl, own) => {
    const text = await scrape(adminUrl());
    // The server's own metrics with series, and Node's process metrics, are what is checked.
    expect(text).toMatch(new RegExp(`^${own}(?:_count)?\\{[^}]*\\} [1-9]`, 'm'));
    expect(text).toContain('# TYPE nodejs_active_handles gauge\n');
    expect(text).toContain('# TYPE process_cpu_seconds_total counter\n');
    expect(checkMetrics(text)).toEqual({ status: 0, output: '' });
  });
});
