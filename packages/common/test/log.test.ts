import { describe, expect, it } from 'vitest';
import { createLogger, MimiError } from '../src/index.js';

function capture(level: 'debug' | 'info' | 'warn' = 'info') {
  const lines: string[] = [];
  const log = createLogger('authoritative', { level, write: (l) => lines.push(l), now: () => 0 });
  return { log, lines, parsed: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('createLogger', () => {
  it('writes one JSON object per line with time, level, namespace and event', () => {
    const { log, parsed } = capture();
    log
      .child('api')
      .info('published', { zone: '4.4.e164.mimi.arpa', bytes: new Uint8Array([1, 2]) });
    expect(parsed()).toEqual([
      {
        time: '1970-01-01T00:00:00.000Z',
        level: 'info',
        ns: 'authoritative:api',
        event: 'published',
        zone: '4.4.e164.mimi.arpa',
        bytes: 'AQI',
      },
    ]);
  });

  it('drops lines below the level', () => {
    const { log, lines } = capture('warn');
    log.info('ignored');
    log.debug('ignored');
    log.warn('kept', { error: new MimiError('ERR_X', 'boom') });
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] as string)).toMatchObject({
      error: { code: 'ERR_X', message: 'boom' },
    });
  });

  it('never writes a sender together with a CSI (design §10)', () => {
    const { log, parsed } = capture();
    log.info('lookup', { csi: 'tel:+442079460018', remoteAddress: '192.0.2.1', ip: '192.0.2.1' });
    log.info('request', { remoteAddress: '192.0.2.1' });
    expect(parsed()[0]).not.toHaveProperty('remoteAddress');
    expect(parsed()[0]).not.toHaveProperty('ip');
    expect(parsed()[1]).toHaveProperty('remoteAddress', '192.0.2.1');
  });
});
