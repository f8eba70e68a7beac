import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { treeCpuSeconds } from './proc.js';
import { percentile } from './report.js';

export interface DnsperfOptions {
  port: number;
  queryFile: string;
  /** Run for this long (`-l`)… */
  seconds?: number;
  /** …or send the query file this many times (`-n`). */
  passes?: number;
  clients: number;
  /** dnsperf's threads (`-T`); default 1. */
  threads?: number;
  /** Outstanding queries at most. */
  outstanding: number;
  /** Queries per second at most; undefined: as fast as the server answers. */
  maxQps?: number;
  /**
   * Record each response's latency (`-v` prints one line per response) and report percentiles.
   * Meant for runs at a fixed rate (`maxQps`): at full load, latency measures the queue.
   */
  percentiles?: boolean;
  /** Ends the run early (dnsperf stops on SIGINT and reports what it sent until then). */
  signal?: AbortSignal;
}

/** Latency percentiles in milliseconds, from dnsperf's per-response lines. */
export interface LatencyPercentiles {
  samples: number;
  p50: number;
  p90: number;
  p99: number;
}

/** dnsperf's summary of one run, plus the CPU the server used meanwhile. */
export interface DnsperfResult {
  args: string[];
  queriesSent: number;
  queriesCompleted: number;
  queriesLost: number;
  queriesPerSecond: number;
  /** dnsperf 2.x reports the mean, min, max and standard deviation of latency, no percentiles. */
  averageLatencyMs: number;
  minLatencyMs: number;
  maxLatencyMs: number;
  latencyStdDevMs: number;
  rcodes: string;
  serverCpuSeconds: number;
  /** Server CPU microseconds per completed query. */
  cpuMicrosecondsPerQuery: number;
  percentilesMs?: LatencyPercentiles;
}

export function dnsperfArgs(options: DnsperfOptions): string[] {
  const args = [
    '-s',
    '127.0.0.1',
    '-p',
    String(options.port),
    '-d',
    options.queryFile,
    '-D',
    ...(options.passes === undefined
      ? ['-l', String(options.seconds ?? 10)]
      : ['-n', String(options.passes)]),
    '-c',
    String(options.clients),
    '-T',
    String(options.threads ?? 1),
    '-q',
    String(options.outstanding),
    '-t',
    '2',
  ];
  if (options.maxQps !== undefined) args.push('-Q', String(options.maxQps));
  if (options.percentiles === true) args.push('-v');
  return args;
}

function number(text: string, pattern: RegExp): number {
  const match = pattern.exec(text);
  if (match?.[1] === undefined) throw new Error(`dnsperf output lacks ${pattern}:\n${text}`);
  return Number(match[1]);
}

/**
 * Runs dnsperf once (bounded by `-l` or `-n`) against 127.0.0.1:`port`; `serverPid` is the
 * server's.
 */
export async function runDnsperf(
  options: DnsperfOptions,
  serverPid: number,
): Promise<DnsperfResult> {
  const args = dnsperfArgs(options);
  const cpuBefore = treeCpuSeconds(serverPid);
  let latencies = new Float64Array(1 << 16);
  let samples = 0;
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn('dnsperf', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    options.signal?.addEventListener('abort', () => child.kill('SIGINT'), { once: true });
    let text = '';
    // Line by line: with -v there is one line per response, kept as a number only.
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (!line.startsWith('> ')) {
        text += `${line}\n`;
        return;
      }
      const value = Number(line.slice(line.lastIndexOf(' ') + 1));
      if (!Number.isFinite(value)) return;
      if (samples === latencies.length) {
        const grown = new Float64Array(latencies.length * 2);
        grown.set(latencies);
        latencies = grown;
      }
      latencies[samples++] = value * 1000;
    });
    child.stderr.on('data', (d: Buffer) => (text += d.toString()));
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0 ? resolve(text) : reject(new Error(`dnsperf exited ${code}:\n${text}`)),
    );
  });
  const cpu = treeCpuSeconds(serverPid) - cpuBefore;
  const completed = number(output, /Queries completed:\s+(\d+)/);
  const latency = /Average Latency \(s\):\s+([\d.]+) \(min ([\d.]+), max ([\d.]+)\)/.exec(output);
  return {
    args,
    queriesSent: number(output, /Queries sent:\s+(\d+)/),
    queriesCompleted: completed,
    queriesLost: number(output, /Queries lost:\s+(\d+)/),
    queriesPerSecond: number(output, /Queries per second:\s+([\d.]+)/),
    averageLatencyMs: Number(latency?.[1] ?? NaN) * 1000,
    minLatencyMs: Number(latency?.[2] ?? NaN) * 1000,
    maxLatencyMs: Number(latency?.[3] ?? NaN) * 1000,
    latencyStdDevMs: number(output, /Latency StdDev \(s\):\s+([\d.]+)/) * 1000,
    rcodes: /Response codes:\s+(.*)/.exec(output)?.[1]?.trim() ?? '',
    serverCpuSeconds: cpu,
    cpuMicrosecondsPerQuery: completed > 0 ? (cpu / completed) * 1e6 : NaN,
    ...(options.percentiles === true ? { percentilesMs: percentilesOf(latencies, samples) } : {}),
  };
}

function percentilesOf(values: Float64Array, count: number): LatencyPercentiles {
  const sorted = values.slice(0, count).sort();
  return {
    samples: count,
    p50: percentile(sorted, 0.5),
    p90: percentile(sorted, 0.9),
    p99: percentile(sorted, 0.99),
  };
}
