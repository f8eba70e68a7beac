import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { treeCpuSeconds } from './proc.js';
import { percentile } from './report.js';

/**
 * One h2load run (nghttp2's HTTP/2 and HTTP/1.1 load generator) of DoH POSTs against one server,
 * its summary parsed, the per-request latencies of its `--log-file` turned into percentiles,
 * and the server's CPU time over the measured part of the run.
 */

export interface H2loadOptions {
  /** `https://127.0.0.1:<port>/dns-query` */
  url: string;
  /** The DNS query in wire format, sent as the body of every POST. */
  bodyFile: string;
  /** Connections. */
  clients: number;
  /** Concurrent streams per connection (HTTP/2). With `-d`, h2load sends one at a time on HTTP/1.1. */
  streams: number;
  /** HTTP/1.1 (keep-alive) instead of HTTP/2. */
  h1: boolean;
  /** Measured seconds (`-D`). */
  seconds: number;
  /** Unmeasured seconds first (`--warm-up-time`): connections up, JIT warm. */
  warmUpSeconds: number;
  /** Where h2load writes one line per request (deleted before and after the run). */
  logFile: string;
}

/** h2load's summary of one run, latency percentiles, and the server's CPU meanwhile. */
export interface H2loadResult {
  args: string[];
  /** Requests completed in the measured part. */
  requests: number;
  succeeded: number;
  failed: number;
  /** Responses with a 2xx status. */
  status2xx: number;
  requestsPerSecond: number;
  /** h2load's "time for request": from sending the request to the end of the response. */
  minLatencyMs: number;
  meanLatencyMs: number;
  maxLatencyMs: number;
  latencyStdDevMs: number;
  /** Percentiles of the same time, from the per-request log (2xx responses only). */
  p50LatencyMs: number;
  p99LatencyMs: number;
  /** Server CPU (user + system) between the start and the end of the measured part. */
  serverCpuSeconds: number;
  /** Server CPU microseconds per completed request. */
  cpuMicrosecondsPerRequest: number;
}

/** Time h2load has, beyond the run's own length, before it is killed. */
const H2LOAD_GRACE_MS = 30_000;

/** `h2load --version`, e.g. `h2load nghttp2/1.52.0`. */
export function h2loadVersion(): string {
  return spawnSync('h2load', ['--version'], { encoding: 'utf8' }).stdout.trim();
}

export function h2loadArgs(options: H2loadOptions): string[] {
  return [
    ...(options.h1 ? ['--h1'] : []),
    '-c',
    String(options.clients),
    '-m',
    String(options.streams),
    '-t',
    '1',
    '-D',
    String(options.seconds),
    '--warm-up-time',
    String(options.warmUpSeconds),
    '-d',
    options.bodyFile,
    '-H',
    'content-type: application/dns-message',
    '-H',
    'accept: application/dns-message',
    `--log-file=${options.logFile}`,
    options.url,
  ];
}

/** A duration as h2load prints it (`336us`, `2.14ms`, `1.02s`), in milliseconds. */
function durationMs(text: string): number {
  const match = /^([\d.]+)(us|ms|s)$/.exec(text);
  if (match === null) return NaN;
  const value = Number(match[1]);
  return match[2] === 'us' ? value / 1000 : match[2] === 'ms' ? value : value * 1000;
}

function number(text: string, pattern: RegExp): number {
  const match = pattern.exec(text);
  if (match?.[1] === undefined) throw new Error(`h2load output lacks ${pattern}:\n${text}`);
  return Number(match[1]);
}

/** Per-request latencies (ms) of 2xx responses in h2load's log: start µs, status, duration µs. */
function loggedLatencies(logFile: string): number[] {
  const latencies: number[] = [];
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    const [, status, micros] = line.split('\t');
    if (status !== undefined && status.startsWith('2')) latencies.push(Number(micros) / 1000);
  }
  return latencies.sort((a, b) => a - b);
}

/**
 * Runs h2load once (bounded by `-D` and a kill timer) against `options.url`; `serverPid` is the
 * server's. Throws when h2load fails or completes no request (e.g. the server does not speak the
 * protocol asked for).
 */
export async function runH2load(options: H2loadOptions, serverPid: number): Promise<H2loadResult> {
  const args = h2loadArgs(options);
  // h2load appends to its log file.
  rmSync(options.logFile, { force: true });
  let cpuAtStart = treeCpuSeconds(serverPid);
  let cpuAtEnd: number | undefined;
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn('h2load', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    const timer = setTimeout(
      () => child.kill('SIGKILL'),
      (options.seconds + options.warmUpSeconds) * 1000 + H2LOAD_GRACE_MS,
    );
    // The CPU is read when h2load says the measured part starts and ends, so that the warm-up's
    // CPU is not charged to the measured requests.
    child.stdout.on('data', (d: Buffer) => {
      const chunk = d.toString();
      if (chunk.includes('Main benchmark duration is started'))
        cpuAtStart = treeCpuSeconds(serverPid);
      if (chunk.includes('Main benchmark duration is over')) cpuAtEnd = treeCpuSeconds(serverPid);
      text += chunk;
    });
    child.stderr.on('data', (d: Buffer) => (text += d.toString()));
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(text);
      else reject(new Error(`h2load exited ${code}:\n${text.slice(-2000)}`));
    });
  });
  const cpu = (cpuAtEnd ?? treeCpuSeconds(serverPid)) - cpuAtStart;
  const requests = number(output, /requests: \d+ total, \d+ started, (\d+) done/);
  const succeeded = number(output, /(\d+) succeeded/);
  if (succeeded === 0) {
    rmSync(options.logFile, { force: true });
    throw new Error(`h2load completed no request:\n${output.slice(-2000)}`);
  }
  const times = /time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)/.exec(output);
  const latencies = loggedLatencies(options.logFile);
  rmSync(options.logFile, { force: true });
  return {
    args,
    requests,
    succeeded,
    failed: number(output, /(\d+) failed/),
    status2xx: number(output, /status codes: (\d+) 2xx/),
    requestsPerSecond: number(output, /finished in [\d.]+\w+, ([\d.]+) req\/s/),
    minLatencyMs: durationMs(times?.[1] ?? ''),
    maxLatencyMs: durationMs(times?.[2] ?? ''),
    meanLatencyMs: durationMs(times?.[3] ?? ''),
    latencyStdDevMs: durationMs(times?.[4] ?? ''),
    p50LatencyMs: percentile(latencies, 0.5),
    p99LatencyMs: percentile(latencies, 0.99),
    serverCpuSeconds: cpu,
    cpuMicrosecondsPerRequest: requests > 0 ? (cpu / requests) * 1e6 : NaN,
  };
}
