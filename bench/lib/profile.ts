import { Session } from 'node:inspector/promises';

/**
 * CPU profiles of a process under load, taken from inside it with the inspector (the same
 * sampling profiler as `node --cpu-prof`, but started and stopped around one phase of the run),
 * and their summary: where the time went, by function.
 */

/** Sampling interval: fine enough for functions of a few microseconds. */
const SAMPLING_INTERVAL_US = 100;
/** Functions listed in a summary. */
export const PROFILE_TOP_FUNCTIONS = 15;

/** The subset of a V8 `.cpuprofile` the summary reads. */
export interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
  }[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileEntry {
  /** `function (file:line)`, the file relative to the package or `node:` module. */
  function: string;
  /** Share of the busy time (idle excluded), in percent. */
  percent: number;
}

export interface ProfileSummary {
  /** What was running while the profile was taken. */
  phase: string;
  /** Milliseconds of samples, and how many of them the process was busy (not idle). */
  sampledMs: number;
  busyMs: number;
  /** Garbage collection, as a share of the busy time. */
  gcPercent: number;
  top: ProfileEntry[];
}

/** Starts and stops profiles inside the current process. */
export class Profiler {
  readonly #session = new Session();
  #connected = false;

  async start(): Promise<void> {
    if (!this.#connected) {
      this.#session.connect();
      this.#connected = true;
      await this.#session.post('Profiler.enable');
      await this.#session.post('Profiler.setSamplingInterval', {
        interval: SAMPLING_INTERVAL_US,
      });
    }
    await this.#session.post('Profiler.start');
  }

  async stop(): Promise<CpuProfile> {
    const { profile } = await this.#session.post('Profiler.stop');
    return profile as CpuProfile;
  }
}

/** Short location of a call frame: the last two path segments, or the `node:` module. */
function where(url: string, line: number): string {
  if (url === '') return '';
  const short = url.startsWith('node:') ? url : url.split('/').slice(-2).join('/');
  return ` (${short}:${line + 1})`;
}

type ProfileNode = CpuProfile['nodes'][number];

/**
 * A function's name and place. A native function (no script, such as the UDP `send` binding
 * or LMDB's `get`) is named with the JavaScript function that called it, which says what it is.
 */
function label(node: ProfileNode, parents: Map<number, ProfileNode>): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const name = functionName === '' ? '(anonymous)' : functionName;
  if (url !== '' || name.startsWith('(')) return `${name}${where(url, lineNumber)}`;
  for (let up = parents.get(node.id); up !== undefined; up = parents.get(up.id)) {
    if (up.callFrame.url !== '') {
      const caller = up.callFrame.functionName === '' ? '(anonymous)' : up.callFrame.functionName;
      return `${name} [native] ← ${caller}${where(up.callFrame.url, up.callFrame.lineNumber)}`;
    }
  }
  return `${name} [native]`;
}

/** Self time by function, idle excluded, as shares of the busy time. */
export function summarizeProfile(phase: string, profile: CpuProfile): ProfileSummary {
  const parents = new Map<number, ProfileNode>();
  for (const node of profile.nodes) {
    for (const child of node.children ?? []) parents.set(child, node);
  }
  const byNode = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    byNode.set(id, (byNode.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const byFunction = new Map<string, number>();
  let sampled = 0;
  let idle = 0;
  let gc = 0;
  for (const node of profile.nodes) {
    const micros = byNode.get(node.id) ?? 0;
    sampled += micros;
    const { functionName } = node.callFrame;
    if (functionName === '(idle)') {
      idle += micros;
      continue;
    }
    if (functionName === '(garbage collector)') gc += micros;
    const name = label(node, parents);
    byFunction.set(name, (byFunction.get(name) ?? 0) + micros);
  }
  const busy = sampled - idle;
  const percent = (micros: number): number => (busy > 0 ? (100 * micros) / busy : 0);
  return {
    phase,
    sampledMs: sampled / 1000,
    busyMs: busy / 1000,
    gcPercent: percent(gc),
    top: [...byFunction]
      .sort((a, b) => b[1] - a[1])
      .slice(0, PROFILE_TOP_FUNCTIONS)
      .map(([name, micros]) => ({ function: name, percent: percent(micros) })),
  };
}
