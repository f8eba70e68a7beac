import { spawn } from 'node:child_process';
import { treeCpuSeconds } from './proc.js';

export interface DnsperfOptions {
  port: number;
  queryFile: string;
  seconds: number;
  clients: number;
  /** Outstanding queries at most. */
  outstanding: number;
  /** Queries per second at most; undefined: as fast as the server answers. */
  maxQps?: number;
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
    '-l',
    String(options.seconds),
    '-c',
    String(options.clients),
    '-T',
    '1',
    '-q',
    String(options.outstanding),
    '-t',
    '2',
  ];
  if (options.maxQps !== undefined) args.push('-Q', String(options.maxQps));
  return args;
}

function number(text: string, pattern: RegExp): number {
  const match = pattern.exec(text);
  if (match?.[1] === undefined) throw new Error(`dnsperf output lacks ${pattern}:\n${text}`);
  return Number(match[1]);
}

/** Runs dnsperf once (bounded by `-l`) against 127.0.0.1:`port`; `serverPid` is the server's. */
export async function runDnsperf(
  options: DnsperfOptions,
  serverPid: number,
): Promise<DnsperfResult> {
  const args = dnsperfArgs(options);
  const cpuBefore = treeCpuSeconds(serverPid);
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn('dnsperf', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr.on('data', (d: Buffer) => (text += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) =>
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
  };
}
