import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { issueServerCertificate, parseConfig, type LocalCa } from '@mimi-discovery/common';
import {
  createMemoryStore,
  dpConfigSchema,
  startDp,
  type DiscoveryStore,
  type RunningDp,
} from '../src/index.js';
import { PROVER_SEED, fakeClock, zoneInit } from './store-battery.js';

/**
 * A real DP for the tests of its servers (limits, query log, padding): a memory store holding
 * the +44 zone of the store battery, a clock that does not move unless the test moves it, and a
 * config given as the operator would write it.
 */

/** A certificate for 127.0.0.1 issued by `ca`, written as `cert.pem` and `key.pem` in `dir`. */
export async function writeTlsFiles(
  ca: LocalCa,
  dir: string,
): Promise<{ cert: string; key: string }> {
  const leaf = await issueServerCertificate(ca, { hostnames: [], ipAddresses: ['127.0.0.1'] });
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  writeFileSync(cert, leaf.certPem);
  writeFileSync(key, leaf.keyPem, { mode: 0o600 });
  return { cert, key };
}

/**
 * Starts a DP over a new memory store holding the +44 zone (`zoneInit`), store and server on
 * one fixed clock (`fakeClock`), from `config` (the keys of a DP's config file) with `role: 'dp'`
 * and `dataDir` added. `prepare` writes to the store before the DP starts.
 */
export async function startMemoryDp(
  dataDir: string,
  config: Record<string, unknown>,
  prepare: (store: DiscoveryStore) => Promise<void> = async () => undefined,
): Promise<RunningDp> {
  const clock = fakeClock();
  const store = createMemoryStore({ proverSeed: PROVER_SEED, now: clock.now });
  await store.addZone(zoneInit());
  await prepare(store);
  const parsed = parseConfig(dpConfigSchema, { role: 'dp', dataDir, ...config });
  return startDp(parsed, { store, now: clock.now });
}
