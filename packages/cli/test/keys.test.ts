import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  buildQuery,
  createTsigKeyring,
  encodePublicKeyFile,
  parseTsigKeyFile,
  queryUdp,
  respondError,
  startDnsServer,
  systemClock,
  type KeyconfData,
  type Message,
} from '@mimi-discovery/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missingTools, runTool } from '../../../test/helpers/tools.js';
import type { PublishedKeysJson, TsigKeyJson } from '../src/commands/keys.js';
import { createCliFixture, serve } from './fixture.js';

const cli = createCliFixture('keys');
afterAll(() => cli.cleanup());

const ZONE = 'chat.example.email.mimi.arpa';
const GATEWAY = `resolver.${ZONE}`;
const ISSUER = `issuer.${ZONE}`;
const NOW = Math.floor(Date.now() / 1000);
const TOOLS = missingTools({ dig: 'bind9-dnsutils', kdig: 'knot-dnsutils' });

const key = (n: number, overrides: Partial<KeyconfData> = {}): KeyconfData => ({
  kind: 'ohttp',
  config: Uint8Array.of(n, 0, 0x20, ...new Uint8Array(32).fill(n), 0, 4, 0, 1, 0, 1),
  notBefore: NOW - 3600,
  notAfter: NOW + 86_400,
  ...overrides,
});

function writeKeys(file: string, keys: readonly KeyconfData[]): string {
  writeFileSync(join(cli.dir, file), encodePublicKeyFile(keys));
  return file;
}

const DP = ['--config', 'dp/config.json'];

beforeAll(async () => {
  await cli.ok(
    ['init', 'dp', '--dir', 'dp', '--range', '@chat.example', '--udp', '0', '--tcp', '0'].concat([
      '--doh',
      '0',
      '--ca-dir',
      'ca',
    ]),
  );
});

/** What `keys show` says is at `name`. */
const show = (name: string): Promise<PublishedKeysJson> =>
  cli.json<PublishedKeysJson>(['keys', 'show', ...DP, '--name', name]);

describe('keys publish', () => {
  it('puts the unexpired keys of the file at the owner, and the _dns SVCB with ohttp', async () => {
    const expired = key(9, { notBefore: NOW - 7200, notAfter: NOW - 1 });
    writeKeys('gateway-public-keys.json', [key(1), key(2, { kind: 'odoh' }), expired]);
    const out = await cli.json<PublishedKeysJson>([
      'keys',
      'publish',
      ...DP,
      '--name',
      GATEWAY,
      '--from',
      'gateway-public-keys.json',
      '--doh',
      'https://127.0.0.1:8447/dns-query',
    ]);
    expect(out).toMatchObject({ zone: ZONE, name: GATEWAY, ttl: 300 });
    expect(out.keys.map((k) => [k.kind, k.config])).toEqual([
      ['ohttp', Buffer.from(key(1).config).toString('base64url')],
      ['odoh', Buffer.from(key(2).config).toString('base64url')],
    ]);
    expect(out.svcb).toEqual({
      name: `_dns.${GATEWAY}`,
      target: GATEWAY,
      params: {
        alpn: ['h2', 'http/1.1'],
        port: 8447,
        ipv4hint: ['127.0.0.1'],
        dohpath: '/dns-query{?dns}',
        ohttp: true,
      },
    });
    const shown = await show(GATEWAY);
    expect(shown.keys).toEqual(out.keys);
    expect(shown.svcb).toEqual(out.svcb);
  });

  it('replaces the previous RRset at the next rotation, and prints what it did', async () => {
    writeKeys('issuer-public-keys.json', [key(3, { kind: 'private-token' })]);
    const argv = ['keys', 'publish', ...DP, '--name', ISSUER, '--from', 'issuer-public-keys.json'];
    await cli.ok(argv);
    writeKeys('issuer-public-keys.json', [
      key(4, { kind: 'private-token' }),
      key(5, { kind: 'private-token', notBefore: NOW + 3600, notAfter: NOW + 90_000 }),
    ]);
    const text = await cli.ok(argv);
    expect(text).toMatch(
      new RegExp(`^published 2 keys at ${ISSUER} in ${ZONE} \\(serial \\d+\\)\n`),
    );
    expect(text).toContain('private-token');
    const shown = await show(ISSUER);
    expect(shown.keys.map((k) => k.config)).toEqual(
      [key(4), key(5)].map((k) => Buffer.from(k.config).toString('base64url')),
    );
    expect(shown.svcb).toBeNull();
  });

  it.each<[string, () => string[], number, string]>([
    [
      'an owner outside the DP zones',
      () => ['--name', 'resolver.example.org', '--from', writeKeys('ok.json', [key(1)])],
      2,
      'ERR_KEYCONF_NO_ZONE',
    ],
    [
      'a file with no unexpired key',
      () => [
        '--name',
        GATEWAY,
        '--from',
        writeKeys('old.json', [key(1, { notBefore: NOW - 7200, notAfter: NOW - 60 })]),
      ],
      1,
      'ERR_KEYCONF_NO_KEYS',
    ],
    [
      'a file of another version',
      () => {
        writeFileSync(join(cli.dir, 'v2.json'), '{"version": 2, "keys": []}');
        return ['--name', GATEWAY, '--from', 'v2.json'];
      },
      1,
      'ERR_KEY_FILE_MALFORMED',
    ],
    [
      'a file that is not JSON',
      () => {
        writeFileSync(join(cli.dir, 'bad.json'), 'version: 1');
        return ['--name', GATEWAY, '--from', 'bad.json'];
      },
      1,
      'ERR_KEY_FILE_MALFORMED',
    ],
    ['a missing file', () => ['--name', GATEWAY, '--from', 'missing.json'], 1, 'ERR_CLI_KEY_FILE'],
    [
      'a DoH URL that is not https',
      () => [
        '--name',
        GATEWAY,
        '--from',
        writeKeys('ok.json', [key(7)]),
        '--doh',
        'http://127.0.0.1/dns-query',
      ],
      1,
      'ERR_KEYCONF_DOH_URL',
    ],
    [
      'a name that is no domain name',
      () => ['--name', 'resolver..x', '--from', writeKeys('ok.json', [key(7)])],
      1,
      'ERR_USAGE',
    ],
  ])(
    'refuses %s with one line, a non-zero exit and nothing stored',
    async (_what, args, exit, code) => {
      const before = await show(GATEWAY);
      const result = await cli.run(['keys', 'publish', ...DP, ...args()]);
      expect(result.exitCode).toBe(exit);
      expect(result.stdout).toBe('');
      expect(result.stderr.split('\n').filter((l) => l !== '')).toHaveLength(1);
      expect(result.stderr).toContain(`(${code})`);
      expect(await show(GATEWAY)).toEqual(before);
    },
  );

  it('says when nothing is published at a name', async () => {
    expect(await cli.ok(['keys', 'show', ...DP, '--name', `nothing.${ZONE}`])).toBe(
      `no keys published at nothing.${ZONE} (zone ${ZONE})\n`,
    );
  });
});

describe('a running DP', () => {
  it('serves what keys publish writes from its next query, signed, to stock tools too', async () => {
    const running = await serve(cli, 'dp/config.json');
    try {
      const udp = running.listener('udp');
      const server = { host: '127.0.0.1', port: udp.port };
      const ask = (name: string, type: 'KEYCONF' | 'SVCB'): Promise<Message> =>
        queryUdp(server, buildQuery(name, type, { dnssecOk: true }));
      const name = `gw2.${ZONE}`;
      // Compact denial (RFC 9824): a name that does not exist is NOERROR with no answer.
      expect((await ask(name, 'KEYCONF')).answers).toEqual([]);

      writeKeys('gw2.json', [key(11), key(12, { kind: 'odoh' })]);
      await cli.ok([
        'keys',
        'publish',
        ...DP,
        '--name',
        name,
        '--from',
        'gw2.json',
        '--doh',
        'https://gw.example:8447/q',
      ]);
      const answer = await ask(name, 'KEYCONF');
      expect(answer.rcode).toBe('NOERROR');
      expect(answer.answers.filter((rr) => rr.type === 'KEYCONF')).toHaveLength(2);
      expect(
        answer.answers.some((rr) => rr.type === 'RRSIG' && rr.data.typeCovered === 'KEYCONF'),
      ).toBe(true);

      const port = String(udp.port);
      if (!TOOLS.has('dig')) {
        const dig = await runTool('dig', [
          '@127.0.0.1',
          '-p',
          port,
          '+dnssec',
          '+norecurse',
          name,
          'TYPE65403',
        ]);
        expect(dig.status).toBe(0);
        expect(dig.output).toContain('status: NOERROR');
        expect(dig.output.match(/\sTYPE65403\s+\\# \d+ a5/gi)).toHaveLength(2);
        expect(dig.output).toMatch(/\sRRSIG\s+TYPE65403 15 /);
        const svcb = await runTool('dig', [
          '@127.0.0.1',
          '-p',
          port,
          '+norecurse',
          `_dns.${name}`,
          'SVCB',
        ]);
        // dig 9.18 knows neither dohpath nor ohttp by name: key7 and key8 (RFC 9460 §2.1).
        expect(svcb.output).toContain(
          '1 gw.example. alpn="h2,http/1.1" port=8447 key7="/q{?dns}" key8',
        );
      }
      if (!TOOLS.has('kdig')) {
        const kdig = await runTool('kdig', [
          '@127.0.0.1',
          '-p',
          port,
          '+dnssec',
          '+norecurse',
          name,
          'TYPE65403',
        ]);
        expect(kdig.status).toBe(0);
        expect(kdig.output).toContain('status: NOERROR');
        expect(kdig.output.match(/\sTYPE65403\s+\\# \d+ a5/gi)).toHaveLength(2);
        expect(kdig.output).toMatch(/\sRRSIG\s+TYPE65403 15 /);
      }
    } finally {
      await running.stop();
    }
  });
});

describe('keys tsig', () => {
  it('prints a new key as tsig-keygen does, its secret as long as the HMAC', async () => {
    const sha256 = parseTsigKeyFile(await cli.ok(['keys', 'tsig', '--name', 'Xfr.DP.example.']));
    expect(sha256).toMatchObject({ name: 'xfr.dp.example', algorithm: 'hmac-sha256' });
    expect(sha256.secret).toHaveLength(32);
    const sha512 = await cli.json<TsigKeyJson>([
      'keys',
      'tsig',
      '--name',
      'xfr.dp.example',
      '--algorithm',
      'hmac-sha512',
    ]);
    expect(sha512.algorithm).toBe('hmac-sha512');
    expect(Buffer.from(sha512.secret ?? '', 'base64')).toHaveLength(64);
    const again = parseTsigKeyFile(await cli.ok(['keys', 'tsig', '--name', 'xfr.dp.example']));
    expect(Buffer.from(again.secret).equals(Buffer.from(sha256.secret))).toBe(false);
  });

  it('writes it to a new file of mode 0600, and never over an existing one', async () => {
    const out = await cli.json<TsigKeyJson>([
      'keys',
      'tsig',
      '--name',
      'a.example',
      '--out',
      'a.key',
    ]);
    expect(out.file).toBe(join(cli.dir, 'a.key'));
    expect(statSync(join(cli.dir, 'a.key')).mode & 0o777).toBe(0o600);
    expect(parseTsigKeyFile(readFileSync(join(cli.dir, 'a.key'), 'utf8')).name).toBe('a.example');
    const twice = await cli.run(['keys', 'tsig', '--name', 'a.example', '--out', 'a.key']);
    expect(twice.exitCode).toBe(2);
    expect(twice.stderr).toMatch(/exists: refusing to overwrite it/);
  });

  it('refuses an algorithm it does not know, and a name that is not one', async () => {
    const md5 = await cli.run(['keys', 'tsig', '--name', 'a.example', '--algorithm', 'hmac-md5']);
    expect(md5.exitCode).toBe(1);
    const name = await cli.run(['keys', 'tsig', '--name', 'not a name']);
    expect(name.exitCode).toBe(1);
  });

  it.skipIf(TOOLS.has('dig'))(
    'makes a key file that dig -k signs with, and a server holding it verifies and signs back',
    async () => {
      await cli.ok(['keys', 'tsig', '--name', 'xfr.chat.example', '--out', 'xfr.key']);
      const file = join(cli.dir, 'xfr.key');
      const key = parseTsigKeyFile(readFileSync(file, 'utf8'));
      const server = await startDnsServer(
        { udp: { port: 0 } },
        (query) => ({ ...respondError(query, 'NOERROR'), answers: [] }),
        { tsig: { keys: createTsigKeyring([key]), now: systemClock } },
      );
      try {
        const port = String(server.udp?.port);
        const signed = await runTool('dig', ['-k', file, '@127.0.0.1', '-p', port, ZONE, 'SOA']);
        expect(signed.output).toContain('status: NOERROR');
        expect(signed.output).toMatch(/xfr\.chat\.example\.\s+0\s+ANY\s+TSIG\s+hmac-sha256\./);
        expect(signed.output).not.toMatch(/Couldn't verify|TSIG could not be validated/i);
        // Another key of the same name: the server answers NOTAUTH (BADSIG).
        await cli.ok(['keys', 'tsig', '--name', 'xfr.chat.example', '--out', 'other.key']);
        const other = await runTool('dig', [
          '-k',
          join(cli.dir, 'other.key'),
          '@127.0.0.1',
          '-p',
          port,
          ZONE,
          'SOA',
        ]);
        expect(other.output).toContain('status: NOTAUTH');
        expect(other.output).toContain('BADSIG');
      } finally {
        await server.close();
      }
    },
  );
});
