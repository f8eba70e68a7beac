import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseConfig } from '@mimi-discovery/common';
import {
  ISSUER_PUBLIC_KEY_FILE,
  issuerConfigSchema,
  startIssuer,
  startRelay,
} from '@mimi-discovery/relay';

/**
 * The oblivious relay or the token issuer under test (`@mimi-discovery/relay`, what
 * `mimi-discovery relay serve` and `issuer serve` run), each in a process of its own so that its
 * CPU time can be read from /proc, from the JSON spec file in argv[2] ({@link RelayProcessSpec}),
 * on 127.0.0.1 and a free port. It writes one JSON line `{"event":"ready",…}` and stops on the
 * line `{"cmd":"stop"}` on stdin (or when stdin closes), answering `{"event":"stopped"}`.
 */

/** The issuer: one user, with tokens enough for every round of the benchmark. */
export interface IssuerSpec {
  role: 'issuer';
  /** A directory of its own: its counters (`data/`) and its token keys (`keys/`). */
  dir: string;
  certFile: string;
  keyFile: string;
  /** Tokens the user may fetch per period (a day). */
  tokensPerPeriod: number;
  user: { id: string; credentialSha256: string };
}

/** The relay: one relay resource, `/ohttp/resolver`, for the resolver's gateway. */
export interface RelaySpec {
  role: 'relay';
  certFile: string;
  keyFile: string;
  /** PEM of the CA of the gateway's certificate. */
  ca: string;
  /** `https://127.0.0.1:<port>/.well-known/ohttp-gateway` */
  gatewayUrl: string;
}

export type RelayProcessSpec = IssuerSpec | RelaySpec;

function reply(value: object): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

async function main(specFile: string): Promise<void> {
  const spec = JSON.parse(readFileSync(specFile, 'utf8')) as RelayProcessSpec;
  const tls = {
    cert: readFileSync(spec.certFile, 'utf8'),
    key: readFileSync(spec.keyFile, 'utf8'),
  };
  let close: () => Promise<void>;
  if (spec.role === 'issuer') {
    const keyDir = join(spec.dir, 'keys');
    const config = parseConfig(issuerConfigSchema, {
      listen: { host: '127.0.0.1', api: 0 },
      tls: { cert: spec.certFile, key: spec.keyFile },
      dataDir: join(spec.dir, 'data'),
      keyDir,
      tokensPerPeriod: spec.tokensPerPeriod,
      users: [spec.user],
      log: { level: 'warn' },
    });
    const issuer = await startIssuer({ ...config, tls });
    close = () => issuer.close();
    reply({
      event: 'ready',
      pid: process.pid,
      url: issuer.api.url,
      name: `127.0.0.1:${issuer.api.port}`,
      keysFile: join(keyDir, ISSUER_PUBLIC_KEY_FILE),
    });
  } else {
    const relay = await startRelay({
      listen: { host: '127.0.0.1', relay: 0 },
      tls,
      ca: spec.ca,
      gateways: { resolver: spec.gatewayUrl },
      // The bench's client is one address on loopback, measured, not limited: its request rate
      // is exempt (the concurrency caps hold: 16 forwards per client by default, which the
      // bench's concurrency stays within).
      limits: { exempt: ['127.0.0.0/8'] },
      log: { level: 'warn' },
    });
    close = () => relay.close();
    reply({ event: 'ready', pid: process.pid, url: relay.url });
  }
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    if ((JSON.parse(line) as { cmd?: string }).cmd === 'stop') break;
  }
  lines.close();
  await close();
  reply({ event: 'stopped' });
}

const specFile = process.argv[2];
if (specFile === undefined) throw new Error('usage: relay-server.ts SPEC_FILE');
await main(specFile);
