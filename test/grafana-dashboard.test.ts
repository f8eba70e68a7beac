import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyPairFromSeed, parseCsi, silentLogger } from '@mimi-discovery/common';
import { MAX_ATTEMPTS_PER_CODE } from '@mimi-discovery/authoritative';
import {
  createResolver,
  startResolverServer,
  type Resolver,
  type RunningResolverServer,
} from '@mimi-discovery/resolver';
import { resolverConfigFor } from '../examples/loopback-network.js';
import { PHONE_ZONE, buildNetwork, type Network } from './helpers/network.js';
import { answerOf, apiOf, attestAndPublish, errorCode } from './helpers/registration.js';

// docs/grafana-dashboard.json queries only metrics that running servers expose: a DP, the root
// and a resolver are started for real, exercised, and their /metrics scraped; every metric name
// in the dashboard's queries (and its variables) must be declared there. The DP's registration
// and zone metrics are also checked for the samples an operator graphs.

interface Dashboard {
  panels: Array<{ type: string; targets?: Array<{ expr: string }> }>;
  templating: { list: Array<{ definition?: string; query?: { query?: string } }> };
}

const dashboard = JSON.parse(
  readFileSync(join(import.meta.dirname, '..', 'docs', 'grafana-dashboard.json'), 'utf8'),
) as Dashboard;

/** Every PromQL expression of the dashboard: its panels' targets and its variables' queries. */
function expressions(d: Dashboard): string[] {
  return [
    ...d.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
    ...d.templating.list.flatMap((v) => [v.definition ?? '', v.query?.query ?? '']),
  ].filter((e) => e !== '');
}

/**
 * The metric names an expression reads: our servers' names all start with the package prefix.
 * A histogram's series (`_bucket`, `_sum`, `_count`) count as the histogram: no metric of ours
 * ends so (`createMetricsRegistry` refuses such names).
 */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/(?<!\$)\b(?:authoritative|resolver)_[a-z0-9_]+/g)].map(([name]) =>
    name.replace(/_(bucket|sum|count)$/, ''),
  );
}

/** The metrics declared in a Prometheus text exposition (`# TYPE` lines). */
function declared(text: string): Set<string> {
  return new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map(([, name]) => name as string));
}

/** The value of one sample, by its exact series text (`name{label="v"}`). */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function scrape(adminUrl: string): Promise<string> {
  const response = await fetch(`${adminUrl}/metrics`);
  expect(response.status).toBe(200);
  return response.text();
}

let net: Network;
let resolver: Resolver;
let server: RunningResolverServer;

beforeAll(async () => {
  net = await buildNetwork();
  resolver = createResolver(resolverConfigFor(net.root.provider, net.caPem), {
    log: silentLogger,
  });
  server = await startResolverServer({ listen: { udp: 0, admin: 0 } }, resolver, {
    log: silentLogger,
  });
  const api = apiOf(net.phone);
  const csi = parseCsi('+442079460081');
  // A code sent through the outbox and a mapping published (the serial moves) ...
  const alice = keyPairFromSeed(new Uint8Array(32).fill(0x71));
  expect((await attestAndPublish(api, csi, alice)).response.status).toBe(201);
  expect((await resolver.discover(csi)).status).toBe('found');
  // ... and a code tried too often: the attempts limit.
  await api.client.prove(csi);
  for (let i = 0; i <= MAX_ATTEMPTS_PER_CODE; i++) {
    const tried = await answerOf(api.client.confirm({ csi, code: '000000', key: alice.publicKey }));
    if (errorCode(tried) === 'ERR_TOO_MANY_ATTEMPTS') break;
  }
}, 60_000);

afterAll(async () => {
  await server?.close();
  await resolver?.close();
  await net?.close();
});

describe('docs/grafana-dashboard.json', () => {
  it('queries only metrics that a running DP, root or resolver exposes', async () => {
    const adminUrl = server.admin?.url;
    if (adminUrl === undefined) throw new Error('the resolver has no admin listener');
    const exposed = new Set([
      ...declared(await scrape(net.phone.adminUrl)),
      ...declared(await scrape(net.root.adminUrl)),
      ...declared(await scrape(adminUrl)),
    ]);
    const queried = new Set(expressions(dashboard).flatMap(metricNames));
    expect(queried.size).toBeGreaterThan(10);
    const missing = [...queried].filter((n) => !exposed.has(n));
    expect(missing).toEqual([]);
  });

  it('has a datasource input and a target on every panel that is not a row', () => {
    for (const panel of dashboard.panels) {
      if (panel.type === 'row') continue;
      expect(panel.targets?.length ?? 0).toBeGreaterThan(0);
    }
  });
});

describe("the DP's registration and zone metrics", () => {
  it('count codes sent by channel, rate limits by reason, and serve each zone’s serial', async () => {
    const text = await scrape(net.phone.adminUrl);
    expect(
      sample(text, 'authoritative_registration_codes_sent_total{channel="outbox"}'),
    ).toBeGreaterThanOrEqual(2);
    expect(sample(text, 'authoritative_registration_rate_limited_total{reason="attempts"}')).toBe(
      1,
    );
    expect(sample(text, 'authoritative_registration_rate_limited_total{reason="client"}')).toBe(0);
    const serial = net.phone.provider.store.zoneInfo(PHONE_ZONE)?.serial;
    expect(serial).toBeGreaterThan(1);
    expect(sample(text, `authoritative_zone_soa_serial{zone="${PHONE_ZONE}"}`)).toBe(serial);
    // No sample is made up: without a signature status from the store, the expiry gauge is empty.
    const store = net.phone.provider.store as { signatureStatus?: unknown };
    if (store.signatureStatus === undefined) {
      expect(text).not.toMatch(/^authoritative_zone_rrsig_earliest_expiry_timestamp_seconds\{/m);
    } else {
      expect(text).toMatch(
        new RegExp(
          `^authoritative_zone_rrsig_earliest_expiry_timestamp_seconds\\{zone="${PHONE_ZONE.replace(/\./g, '\\.')}"\\} \\d+`,
          'm',
        ),
      );
    }
  });
});
