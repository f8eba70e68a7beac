import { execFileSync, spawnSync } from 'node:child_process';
import {
  chownSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  realpathSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { freePort } from './ports.js';

/**
 * A PostgreSQL cluster of its own for a test (or the bench): `initdb` into a fresh temporary
 * directory, `pg_ctl start` on a free port with its unix socket in that directory, never a
 * cluster a developer runs. The binaries are looked up on the PATH, then in Debian's
 * `/usr/lib/postgresql/<version>/bin` (newest first). `initdb` refuses to run as root: as root,
 * the cluster belongs to the user `postgres` (Debian's package creates it), else `nobody`, and
 * the commands run as that user (`runuser`, else `su`).
 *
 * Durability settings are the ones the store's acknowledgements rely on (`fsync = on`,
 * `synchronous_commit = on`), so a kill test against this cluster means what it says.
 */

/** Longest wait for the cluster to start or stop. */
export const POSTGRES_START_TIMEOUT_SECONDS = 60;

/** A running cluster. */
export interface TestPostgres {
  /** Connection URL of the superuser `postgres` to the database `postgres`, over the socket. */
  readonly url: string;
  /** The temporary directory: the cluster's data in `data/`, its socket beside it. */
  readonly dataDir: string;
  readonly port: number;
  /** Stops the cluster (fast shutdown) and removes its directory. */
  stop(): Promise<void>;
  /** Kills the postmaster with SIGKILL (a crash); `stop` still removes the directory. */
  kill(): void;
  /** Starts the cluster again on its data (after `kill`: crash recovery from the WAL). */
  restart(): Promise<void>;
  /** The connection URL of database `name` of this cluster. */
  databaseUrl(name: string): string;
  /** Creates a new, empty database and resolves with its URL. */
  createDatabase(): Promise<string>;
}

/** The path of a PostgreSQL program (pg_dump, pg_restore, psql) of the cluster's version. */
export function postgresTool(tool: string): string {
  const bin = binDirectory();
  if (bin === undefined) throw new Error('PostgreSQL not installed');
  // Beside initdb; else whatever the PATH has (Debian's wrappers pick the newest version).
  return existsSync(join(bin, tool)) ? join(bin, tool) : tool;
}

const BIN_TOOLS = ['initdb', 'pg_ctl'] as const;

/** The directory holding initdb and pg_ctl, or undefined. */
function binDirectory(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v initdb && command -v pg_ctl'], {
    encoding: 'utf8',
  });
  if (found.status === 0) {
    const [initdb] = found.stdout.trim().split('\n');
    // Debian's /usr/bin wrappers or symlinks: the tools beside the real initdb (pg_dump too).
    if (initdb !== undefined) return dirname(realpathSync(initdb));
  }
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base)
    .filter((v) => /^\d+(\.\d+)?$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const bin = join(base, version, 'bin');
    if (BIN_TOOLS.every((tool) => existsSync(join(bin, tool)))) return bin;
  }
  return undefined;
}

/**
 * Why {@link startPostgres} cannot run here (for the skip line of a test), or undefined when it
 * can: initdb or pg_ctl missing, or, as root, no unprivileged user to run them as.
 */
export function postgresMissing(): string | undefined {
  if (binDirectory() === undefined) {
    return 'PostgreSQL not installed (Debian package postgresql: initdb and pg_ctl)';
  }
  if (isRoot() && runAs() === undefined) {
    return 'running as root without a user postgres or nobody to run PostgreSQL as';
  }
  return undefined;
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** As root: the user the cluster runs as, with its uid and gid. */
function runAs(): { user: string; uid: number; gid: number } | undefined {
  for (const user of ['postgres', 'nobody']) {
    const id = spawnSync('id', ['-u', user], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', user], { encoding: 'utf8' });
    if (id.status === 0 && gid.status === 0) {
      return { user, uid: Number(id.stdout.trim()), gid: Number(gid.stdout.trim()) };
    }
  }
  return undefined;
}

/** Runs a PostgreSQL tool, as the cluster's user when this process is root. */
function run(bin: string, tool: string, args: readonly string[], timeoutSeconds: number): void {
  const path = join(bin, tool);
  const user = isRoot() ? runAs() : undefined;
  let file = path;
  let argv = [...args];
  if (user !== undefined) {
    const runuser = spawnSync('sh', ['-c', 'command -v runuser'], { encoding: 'utf8' });
    if (runuser.status === 0) {
      file = 'runuser';
      argv = ['-u', user.user, '--', path, ...args];
    } else {
      const quoted = [path, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
      file = 'su';
      argv = ['-s', '/bin/sh', user.user, '-c', quoted];
    }
  }
  execFileSync(file, argv, {
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: timeoutSeconds * 1000,
    // Run from a directory the cluster's user can enter.
    cwd: tmpdir(),
  });
}

/** The postmaster's pid from the pid file of `data`, or undefined. */
function postmasterPid(data: string): number | undefined {
  const file = join(data, 'postmaster.pid');
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * Whether process `pid` runs. A killed process that nobody reaps stays a zombie (a container's
 * first process may not reap the postmaster it inherited): that counts as gone.
 */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

/** Whether the postmaster of `data` (its pid file's first line) is running. */
function postmasterAlive(data: string): boolean {
  const pid = postmasterPid(data);
  return pid !== undefined && alive(pid);
}

/**
 * Starts a fresh cluster in a new temporary directory on a free port and resolves once it
 * accepts connections. Throws when {@link postgresMissing} gives a reason.
 */
export async function startPostgres(): Promise<TestPostgres> {
  const missing = postgresMissing();
  if (missing !== undefined) throw new Error(missing);
  const bin = binDirectory() as string;
  const dir = mkdtempSync(join(tmpdir(), 'mimi-pg-'));
  const data = join(dir, 'data');
  const user = isRoot() ? runAs() : undefined;
  if (user !== undefined) chownSync(dir, user.uid, user.gid);
  const port = await freePort();
  const settings = [
    `-p ${port}`,
    `-k ${dir}`,
    "-c listen_addresses=''",
    '-c fsync=on',
    '-c synchronous_commit=on',
    '-c max_connections=200',
    // The tests open and drop many small databases: keep checkpoints out of their way.
    '-c max_wal_size=1GB',
  ].join(' ');
  const runStart = (): void =>
    run(
      bin,
      'pg_ctl',
      [
        'start',
        '-D',
        data,
        '-w',
        '-t',
        String(POSTGRES_START_TIMEOUT_SECONDS),
        '-l',
        join(dir, 'log'),
        '-o',
        settings,
      ],
      POSTGRES_START_TIMEOUT_SECONDS + 5,
    );
  try {
    run(
      bin,
      'initdb',
      ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-instructions'],
      POSTGRES_START_TIMEOUT_SECONDS,
    );
    runStart();
  } catch (error) {
    const log = existsSync(join(dir, 'log')) ? readFileSync(join(dir, 'log'), 'utf8') : '';
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`PostgreSQL did not start: ${String(error)}\n${log}`);
  }
  const databaseUrl = (name: string): string =>
    `postgresql://postgres@/${name}?host=${encodeURIComponent(dir)}&port=${port}`;
  const url = databaseUrl('postgres');
  let databases = 0;
  let stopped = false;
  /** Processes `kill` signalled, which `restart` waits for. */
  const killed: number[] = [];
  return {
    url,
    databaseUrl,
    createDatabase: async () => {
      const name = `mimi_${++databases}`;
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      return databaseUrl(name);
    },
    restart: async () => {
      // A killed postmaster leaves its pid file. PostgreSQL ignores it once that process is gone,
      // but takes a zombie for a live server: then the file is stale, and removed here.
      for (const pid of killed) {
        for (let waited = 0; alive(pid) && waited < POSTGRES_START_TIMEOUT_SECONDS * 10; waited++) {
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
      killed.length = 0;
      if (postmasterPid(data) !== undefined && !postmasterAlive(data)) {
        rmSync(join(data, 'postmaster.pid'), { force: true });
        // The socket's lock file names the same pid, and is just as stale.
        rmSync(join(dir, `.s.PGSQL.${port}.lock`), { force: true });
        rmSync(join(dir, `.s.PGSQL.${port}`), { force: true });
      }
      runStart();
    },
    dataDir: dir,
    port,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      try {
        if (existsSync(join(data, 'postmaster.pid')) && postmasterAlive(data)) {
          run(
            bin,
            'pg_ctl',
            ['stop', '-D', data, '-m', 'fast', '-w'],
            POSTGRES_START_TIMEOUT_SECONDS,
          );
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    kill: () => {
      const pid = postmasterPid(data);
      if (pid === undefined) return;
      // The postmaster and its backends, as a power cut would stop them: a backend outliving its
      // postmaster would keep the shared memory that a restart needs.
      const children = spawnSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' })
        .stdout.split('\n')
        .map((line) => Number(line.trim()))
        .filter((child) => Number.isInteger(child) && child > 0);
      for (const target of [pid, ...children]) {
        killed.push(target);
        try {
          process.kill(target, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    },
  };
}
