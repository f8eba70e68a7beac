import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ; 100 on Linux). */
const TICKS_PER_SECOND = 100;

interface ProcStat {
  pid: number;
  ppid: number;
  /** utime + stime, in seconds. */
  cpuSeconds: number;
}

function readStat(pid: number): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may hold spaces: fields follow the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(fields[1]);
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return { pid, ppid, cpuSeconds: (utime + stime) / TICKS_PER_SECOND };
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) used so far by `root` and every live descendant of it. */
export function treeCpuSeconds(root: number): number {
  const all: ProcStat[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat !== undefined) all.push(stat);
  }
  const inTree = new Set([root]);
  for (let grew = true; grew;) {
    grew = false;
    for (const p of all) {
      if (!inTree.has(p.pid) && inTree.has(p.ppid)) {
        inTree.add(p.pid);
        grew = true;
      }
    }
  }
  return all.filter((p) => inTree.has(p.pid)).reduce((sum, p) => sum + p.cpuSeconds, 0);
}

/** First non-empty line a command prints on stdout or stderr (some print versions on stderr). */
function firstLine(command: string, args: string[]): string {
  const run = spawnSync(command, args, { encoding: 'utf8' });
  if (run.error !== undefined) return 'not installed';
  const text = `${run.stdout}${run.stderr}`;
  return text.split('\n').find((line) => line.trim() !== '') ?? '';
}

export interface MachineFacts {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  nsd: string;
  knot: string;
  dnsperf: string;
}

export function machineFacts(): MachineFacts {
  const dnsperfHelp = spawnSync('dnsperf', ['-h'], { encoding: 'utf8' });
  const dnsperfText = `${dnsperfHelp.stdout ?? ''}${dnsperfHelp.stderr ?? ''}`;
  return {
    cpuModel: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: firstLine('uname', ['-sr']),
    node: process.version,
    nsd: firstLine('nsd', ['-v']),
    knot: firstLine('knotd', ['-V']),
    dnsperf: /Version\s+(\S+)/.exec(dnsperfText)?.[1] ?? 'not installed',
  };
}
