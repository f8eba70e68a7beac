import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { build, type Plugin } from 'esbuild';

/**
 * What the durability tests share: a fixture bundled into one ESM file that node runs as a child
 * (under strace), and the reading of an `strace -f` trace for the order of flushes and
 * acknowledgements (design §9: a write is acknowledged only once it is flushed to disk).
 */

/**
 * Bundles the TypeScript fixture `entry` into `outfile` (ESM for node): the workspace packages
 * from their sources, every other package left to node's own resolution.
 */
export async function bundleFixture(entry: string, outfile: string): Promise<void> {
  const externals: Plugin = {
    name: 'absolute-externals',
    setup(builder) {
      builder.onResolve({ filter: /^[^./]/ }, async (args) => {
        if (args.path.startsWith('@mimi-discovery/') || args.pluginData === 'resolving') {
          return undefined;
        }
        if (args.path.startsWith('node:')) return { path: args.path, external: true };
        const resolved = await builder.resolve(args.path, {
          kind: args.kind,
          resolveDir: args.resolveDir,
          importer: args.importer,
          pluginData: 'resolving',
        });
        if (resolved.errors.length > 0) return { errors: resolved.errors };
        return { path: resolved.path, external: true };
      });
    },
  };
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    conditions: ['source'],
    plugins: [externals],
    logLevel: 'silent',
  });
}

/** Whether `strace` is installed (the tests that need it skip, and say so, without it). */
export function straceInstalled(): boolean {
  return spawnSync('sh', ['-c', 'command -v strace']).status === 0;
}

/**
 * Runs `node script ...args` under `strace -f` (the calls that flush, and writes), writing the
 * trace to `trace`; returns the child's exit status and stderr and the trace's events.
 */
export function traceNode(
  script: string,
  args: readonly string[],
  trace: string,
): { status: number | null; stderr: string; events: TraceEvent[] } {
  const result = spawnSync(
    'strace',
    [
      '-f',
      '-qq',
      '-e',
      'trace=openat,fsync,fdatasync,msync,write,pwrite64,pwritev,writev',
      '-o',
      trace,
      process.execPath,
      script,
      ...args,
    ],
    { encoding: 'utf8', timeout: 60_000 },
  );
  const events = result.status === 0 ? parseTrace(readFileSync(trace, 'utf8')) : [];
  return { status: result.status, stderr: result.stderr, events };
}

export type TraceEvent =
  | { kind: 'ack'; n: number }
  | { kind: 'data-write' }
  | { kind: 'flush-start' | 'flush-end' | 'dsync-start' | 'dsync-end'; pid: string };

/**
 * The events of an `strace -f -o` trace that matter here, in order: acknowledgements written to
 * stdout; the start and successful end of fsync, fdatasync and msync; and of writes through a
 * descriptor of `data.mdb` opened with O_DSYNC (LMDB writes meta pages through one); and the
 * completed writes of pages through its other descriptors (`data-write`: what a flush after them
 * must cover). A call that another thread interrupts in the trace appears as
 * `<unfinished ...>` and `<... resumed>`.
 */
export function parseTrace(text: string): TraceEvent[] {
  const events: TraceEvent[] = [];
  const dsyncFds = new Set<string>();
  const dataFds = new Set<string>();
  for (const line of text.split('\n')) {
    const ack = /^\d+\s+write\(1, "ack (\d+)\\n"/.exec(line);
    if (ack !== null) {
      events.push({ kind: 'ack', n: Number(ack[1]) });
      continue;
    }
    const opened = /^\d+\s+openat\(.*"[^"]*data\.mdb", [^)]*O_DSYNC[^)]*\)\s+= (\d+)/.exec(line);
    if (opened !== null) {
      dsyncFds.add(opened[1] as string);
      continue;
    }
    const openedData = /^\d+\s+openat\(.*"[^"]*data\.mdb", [^)]*\)\s+= (\d+)/.exec(line);
    if (openedData !== null) {
      dataFds.add(openedData[1] as string);
      continue;
    }
    const pages = /^\d+\s+(?:pwrite64|pwritev|writev)\((\d+),.*= (\d+)$/.exec(line);
    if (pages !== null && dataFds.has(pages[1] as string)) {
      events.push({ kind: 'data-write' });
      continue;
    }
    const call =
      /^(\d+)\s+(fsync|fdatasync|msync|pwrite64)\((\d+)?.*?(<unfinished \.\.\.>|= (-?\d+))/.exec(
        line,
      );
    if (call !== null) {
      const [, pid = '', name, fd = '', , result] = call;
      const kind = name === 'pwrite64' ? (dsyncFds.has(fd) ? 'dsync' : undefined) : 'flush';
      if (kind === undefined) continue;
      events.push({ kind: `${kind}-start`, pid });
      if (result !== undefined && Number(result) >= 0) events.push({ kind: `${kind}-end`, pid });
      continue;
    }
    const resumed = /^(\d+)\s+<\.\.\. (fsync|fdatasync|msync|pwrite64) resumed>.*= (-?\d+)/.exec(
      line,
    );
    if (resumed !== null && Number(resumed[3]) >= 0) {
      const kind = resumed[2] === 'pwrite64' ? 'dsync-end' : 'flush-end';
      events.push({ kind, pid: resumed[1] as string });
    }
  }
  return events;
}

/**
 * The acknowledgements not preceded by a flush that both started after the previous
 * acknowledgement and after the last page written, and completed before this one (with
 * `flush-and-meta`, followed by a completed O_DSYNC write). With one write in flight at a time,
 * write n commits after ack n - 1, so its pages and its flush must fit between the two, in that
 * order: a flush of the previous commit that ends late does not count for this one.
 */
export function unflushedAcks(
  events: readonly TraceEvent[],
  rule: 'flush' | 'flush-and-meta',
): number[] {
  const missing: number[] = [];
  const started = { flush: new Set<string>(), dsync: new Set<string>() };
  let flushed = false;
  let marked = false;
  for (const event of events) {
    switch (event.kind) {
      case 'flush-start':
        started.flush.add(event.pid);
        break;
      case 'dsync-start':
        started.dsync.add(event.pid);
        break;
      case 'flush-end':
        if (started.flush.delete(event.pid)) flushed = true;
        break;
      case 'dsync-end':
        if (started.dsync.delete(event.pid) && flushed) marked = true;
        break;
      case 'data-write':
        // Pages written after a flush are not covered by it.
        flushed = false;
        marked = false;
        started.flush.clear();
        started.dsync.clear();
        break;
      case 'ack':
        if (!(rule === 'flush' ? flushed : marked)) missing.push(event.n);
        flushed = false;
        marked = false;
        started.flush.clear();
        started.dsync.clear();
        break;
    }
  }
  return missing;
}
