import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import {
  controlRequest,
  createLocalCa,
  issueServerCertificate,
  record,
  type ControlReply,
  type LocalCa,
} from '@mimi-discovery/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningDp } from '../src/index.js';
import { startMemoryDp, writeTlsFiles } from './memory-dp.js';
import { ORIGIN } from './store-battery.js';

// The control commands of a running DP (`startDp`): its socket in the data directory, a zone's
// status read from the store, and a reload that refuses a certificate its key does not match.

const dir = mkdtempSync(join(tmpdir(), 'mimi-dp-control-'));
let ca: LocalCa;
let dp: RunningDp;
let tls: { cert: string; key: string };

beforeAll(async () => {
  ca = await createLocalCa();
  tls = await writeTlsFiles(ca, dir);
  dp = await startMemoryDp(dir, {
    listen: { doh: 0 },
    tls,
    log: { level: 'silent' },
  });
});

afterAll(async () => {
  await dp.close();
  rmSync(dir, { recursive: true, force: true });
});

function served(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerX509Certificate()?.fingerprint256 ?? '');
      socket.destroy();
    });
    socket.on('error', reject);
  });
}

function result<T>(reply: ControlReply): T {
  if (!reply.ok) throw new Error(`${reply.error.code}: ${reply.error.message}`);
  return reply.result as T;
}

describe('the control commands of a DP', () => {
  it('listen on <dataDir>/control.sock, mode 0600', () => {
    expect(dp.control.socket?.path).toBe(join(dir, 'control.sock'));
    expect(statSync(join(dir, 'control.sock')).mode & 0o777).toBe(0o600);
  });

  it("report a zone's serial as the store has it, after a write too", async () => {
    const socket = { socket: join(dir, 'control.sock') };
    const before = result<{ zones: Array<{ zone: string; serial: number }> }>(
      await controlRequest(socket, { command: 'zone-status', zone: ORIGIN }),
    );
    expect(before.zones[0]?.serial).toBe(dp.store.zoneInfo(ORIGIN)?.serial);
    const name = `1.2.3.${ORIGIN}`;
    await dp.store.apply(ORIGIN, [
      { op: 'put', name, type: 'MAPREF', records: [record(name, 'MAPREF', 'dp.msp.example', 300)] },
    ]);
    const after = result<{ zones: Array<{ serial: number }> }>(
      await controlRequest(socket, { command: 'zone-status' }),
    );
    expect(after.zones[0]?.serial).toBeGreaterThan(before.zones[0]?.serial ?? 0);
  });

  it('keep the served certificate when the new one does not match its key', async () => {
    const port = dp.dns?.doh?.port ?? 0;
    const original = await served(port);
    const one = await issueServerCertificate(ca, { hostnames: [], ipAddresses: ['127.0.0.1'] });
    const other = await issueServerCertificate(ca, { hostnames: [], ipAddresses: ['127.0.0.1'] });
    const saved = { cert: readFileSync(tls.cert), key: readFileSync(tls.key) };
    writeFileSync(tls.cert, one.certPem);
    writeFileSync(tls.key, other.keyPem);
    await expect(dp.reload()).rejects.toMatchObject({ code: 'ERR_TRANSPORT_CONFIG' });
    expect(await served(port)).toBe(original);
    const status = result<{ lastReload: { ok: boolean } }>(
      await dp.control.dispatcher.dispatch({ command: 'status' }),
    );
    expect(status.lastReload.ok).toBe(false);
    // A matching pair is then taken.
    writeFileSync(tls.key, one.keyPem);
    const report = await dp.reload();
    expect(report.applied).toEqual(['tls']);
    expect(await served(port)).toBe(new X509Certificate(one.certPem).fingerprint256);
    writeFileSync(tls.cert, saved.cert);
    writeFileSync(tls.key, saved.key);
  });
});
