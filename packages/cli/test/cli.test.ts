import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildQuery, queryUdp } from '@mimi-discovery/common';
import { createCliFixture, serve } from './fixture.js';

const cli = createCliFixture('cli');
afterAll(() => cli.cleanup());

beforeAll(async () => {
  await cli.ok(['init', 'root', '--dir', 'root', '--udp', '0', '--tcp', '0', '--admin', '0']);
});

/** One error line, as every failure prints. */
const ONE_LINE = /^mimi-discovery: [^\n]+ \((ERR_[A-Z0-9_]+|E[A-Z]+)\)\n$/;

const COMMANDS = [
  [],
  ['init'],
  ['init', 'root'],
  ['init', 'dp'],
  ['ds'],
  ['delegate'],
  ['undelegate'],
  ['delegations'],
  ['trust-anchor'],
  ['hints'],
  ['serve'],
  ['zone'],
  ['zone', 'export'],
  ['zone', 'import'],
  ['db'],
  ['db', 'migrate'],
  ['db', 'copy'],
  ['db', 'backup'],
  ['recipient'],
  ['recipient', 'keygen'],
  ['recipient', 'audience-key'],
  ['recipient', 'prove'],
  ['recipient', 'confirm'],
  ['recipient', 'publish'],
  ['recipient', 'mapref'],
  ['recipient', 'remove'],
  ['resolver'],
  ['resolver', 'serve'],
  ['lookup'],
];

describe('help', () => {
  it.each(COMMANDS.map((c) => [c.join(' ') || '(top level)', c] as const))(
    'describes %s with usage and examples',
    async (_, path) => {
      const result = await cli.run([...path, '--help']);
      expect(result.exitCode).toBe(0);
      expect(result.stderr).toBe('');
      expect(result.stdout).toContain(`Usage: ${['mimi-discovery', ...path].join(' ')} [options]`);
      expect(result.stdout).toContain('Examples:\n  $ mimi-discovery ');
    },
  );

  it('prints the version', async () => {
    const result = await cli.run(['--version']);
    expect(result).toEqual({ exitCode: 0, stdout: '0.1.0\n', stderr: '' });
  });
});

describe('bad input', () => {
  const cases: Array<[string, string[], number, RegExp]> = [
    ['an unknown command', ['frobnicate'], 1, /unknown command 'frobnicate'.*\(ERR_USAGE\)/],
    ['a missing command', [], 1, /a command is missing: init, ds, .*\(ERR_USAGE\)/],
    [
      'a missing subcommand',
      ['zone'],
      1,
      /zone needs a command: export, import, nsec3 \(see 'mimi-discovery zone --help'\) \(ERR_USAGE\)/,
    ],
    [
      'an unknown flag',
      ['ds', '--config', 'root/config.json', '--zonne', 'x'],
      1,
      /unknown option '--zonne' \(Did you mean --zone\?\) \(ERR_USAGE\)/,
    ],
    [
      'a missing required flag',
      ['init', 'root'],
      1,
      /required option '--dir <dir>' not specified \(ERR_USAGE\)/,
    ],
    [
      'a bad port',
      ['init', 'root', '--dir', 'x', '--udp', '70000'],
      1,
      /--udp <port>.*expected a port number 0–65535 \(ERR_USAGE\)/,
    ],
    [
      'a bad range',
      ['init', 'dp', '--dir', 'x', '--range', '+044'],
      1,
      /--range "\+044": .*\(ERR_RANGE_INVALID\)/,
    ],
    [
      'a range that is an address',
      [
        'delegate',
        '--config',
        'root/config.json',
        '--range',
        'a@b.example',
        '--ns',
        'ns.x',
        '--ds',
        `1 15 2 ${'00'.repeat(32)}`,
      ],
      1,
      /--range "a@b\.example": .*not an address \(ERR_RANGE_INVALID\)/,
    ],
    [
      'a bad CSI',
      ['recipient', 'prove', '--api', 'https://127.0.0.1:1', '--csi', 'not-a-csi'],
      1,
      /--csi "not-a-csi": .*\(ERR_CSI_[A-Z_]+\)/,
    ],
    [
      'a missing config',
      ['ds', '--config', 'nowhere.json'],
      1,
      /nowhere\.json: cannot read the config file: .*\(ERR_CONFIG_READ\)/,
    ],
    [
      'no config at all',
      ['delegations'],
      1,
      /--config FILE is required \(or set MIMI_DISCOVERY_CONFIG\) \(ERR_USAGE\)/,
    ],
    [
      'conflicting TLS flags',
      ['init', 'root', '--dir', 'x', '--tls-cert', 'c.pem', '--ca-dir', 'ca'],
      1,
      /option '--tls-cert <file>' cannot be used with option '--ca-dir <dir>' \(ERR_USAGE\)/,
    ],
    [
      'a data directory without a store',
      ['ds', '--config', 'empty.json'],
      2,
      /no store in .*empty: create it with 'mimi-discovery init' \(ERR_CLI_NO_STORE\)/,
    ],
  ];

  beforeAll(() => {
    writeFileSync(join(cli.dir, 'empty.json'), JSON.stringify({ role: 'root', dataDir: 'empty' }));
  });

  it.each(cases)('reports %s in one line on stderr', async (_, argv, exitCode, message) => {
    const result = await cli.run(argv);
    expect(result.exitCode).toBe(exitCode);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(ONE_LINE);
    expect(result.stderr).toMatch(message);
  });

  it('reports an unknown config key with its path', async () => {
    writeFileSync(
      join(cli.dir, 'typo.json'),
      JSON.stringify({ role: 'root', dataDir: 'root', listen: { udp: 0, tcpp: 0 } }),
    );
    const result = await cli.run(['serve', '--config', 'typo.json']);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(ONE_LINE);
    expect(result.stderr).toMatch(
      /typo\.json: unknown key "tcpp" in listen \(ERR_CONFIG_INVALID\)\n$/,
    );
  });
});

describe('serve', () => {
  it('prints one line per listener and stops cleanly when told to', async () => {
    const running = await serve(cli, 'root/config.json');
    expect(running.listeners.map((l) => l.listener)).toEqual(['udp', 'tcp', 'admin']);
    const admin = running.listener('admin');
    const health = await fetch(`${admin.url ?? ''}/healthz`);
    expect(health.status).toBe(200);
    const result = await running.stop();
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toBe('');
  });

  it('keeps a query log in the file --query-log names, one JSON line per query', async () => {
    const running = await serve(cli, 'root/config.json', ['--query-log', 'root-queries.jsonl']);
    const udp = running.listener('udp');
    try {
      const response = await queryUdp(udp, buildQuery('mimi.arpa', 'SOA'));
      expect(response.rcode).toBe('NOERROR');
    } finally {
      const result = await running.stop();
      expect(result.exitCode).toBe(0);
    }
    const lines = readFileSync(join(cli.dir, 'root-queries.jsonl'), 'utf8').trim().split('\n');
    expect(lines.map((l) => JSON.parse(l) as unknown)).toEqual([
      expect.objectContaining({ name: 'mimi.arpa', type: 'SOA', transport: 'udp' }),
    ]);
    expect(lines[0]).not.toContain('127.0.0.1');
  });

  it('prints host:port lines without --json', async () => {
    const stop = new AbortController();
    let printed: (text: string) => void = () => undefined;
    const first = new Promise<string>((resolve) => {
      printed = resolve;
    });
    const running = cli.run(['serve', '--config', 'root/config.json'], {
      signal: stop.signal,
      stdout: (t) => printed(t),
    });
    await first;
    stop.abort();
    const result = await running;
    expect(result.exitCode).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^udp {3}127\.0\.0\.1:\d+$/);
    expect(lines[2]).toMatch(/^admin http:\/\/127\.0\.0\.1:\d+$/);
  });
});

describe('the bin', () => {
  const bin = join(import.meta.dirname, '..', 'bin', 'mimi-discovery.js');
  const built = existsSync(join(import.meta.dirname, '..', 'dist', 'main.js'));
  if (!built) console.warn('packages/cli is not built (run tsc -b): skipping the bin test');

  it.skipIf(!built)('runs the built command as a child process and prints its help', () => {
    const result = spawnSync(process.execPath, [bin, '--help'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('Usage: mimi-discovery [options] [command]');
    expect(result.stderr).toBe('');
  });

  it('says in one line to build first when there is no build', () => {
    // The bin alone, where it has no dist/ beside it: as in a fresh clone after npm ci.
    const copy = join(cli.dir, 'unbuilt', 'bin', 'mimi-discovery.js');
    mkdirSync(dirname(copy), { recursive: true });
    copyFileSync(bin, copy);
    const result = spawnSync(process.execPath, [copy, '--version'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(result.status).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      'mimi-discovery: the command is not built: run npm run build first (ERR_CLI_NOT_BUILT)\n',
    );
  });
});
