import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger, type RRType } from '@mimi-discovery/common';
import {
  EXPIRED,
  FailureCache,
  MAX_RESOLUTION_MS,
  ResolverCache,
  askQuestion,
  createQuestionStage,
  startDeadline,
  type NameServer,
  type QuestionCounters,
  type QuestionStage,
  type Resolved,
  type Upstream,
} from '../src/index.js';

// One state, one single-flight and one deadline per question: callers of a question share its
// resolution, its upstream queries and its deadline, however late they join. The upstream here
// is a server that never answers, so every resolution runs into its deadline; monotonic time
// and timers are vitest's fake ones, so the deadline is reached exactly, without waiting.

const APEX = 'mimi.arpa';
const ROOT_SERVER: NameServer = {
  name: `ns1.${APEX}`,
  endpoint: { kind: 'dns', host: '192.0.2.1', port: 53 },
};

/** An upstream whose servers never answer; it records what it was asked, as `name/type`. */
function silentUpstream(): Upstream & { readonly asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    query: (_servers, name: string, type: RRType) => {
      asked.push(`${name}/${type}`);
      return new Promise(() => undefined);
    },
    sent: () => asked.length,
    forgetRtts: () => undefined,
    serverState: () => undefined,
    close: async () => undefined,
  };
}

/** A question stage over `upstream`, its cache on a fixed clock. */
function stageOver(upstream: Upstream): QuestionStage {
  const clock = (): number => 1_767_225_600;
  const cache = new ResolverCache(1 << 20, clock);
  const counters: QuestionCounters = {
    cacheHits: 0,
    cacheMisses: 0,
    failureCacheHits: 0,
    signatureVerifications: 0,
    validationFailures: {},
  };
  return createQuestionStage({
    apex: APEX,
    root: { zone: APEX, servers: [ROOT_SERVER], ds: [] },
    transport: 'dns',
    dnsPort: 53,
    upstream,
    cache,
    now: clock,
    log: silentLogger,
    failures: new FailureCache(cache, APEX, clock),
    counters,
  });
}

const isTimeout = (r: Resolved): boolean => r.kind === 'error' && r.reason === 'timeout';

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
});

afterEach(() => {
  vi.useRealTimers();
});

describe('one resolution per question', () => {
  it('gives 50 callers of a question one query and the question’s deadline, however late they join', async () => {
    const upstream = silentUpstream();
    const stage = stageOver(upstream);
    const name = `x.${APEX}`;
    const settledAt: number[] = [];
    const ask = (): Promise<Resolved> =>
      askQuestion(stage, name, 'MAP').then((r) => {
        settledAt.push(performance.now());
        return r;
      });
    const started = performance.now();
    const early = Array.from({ length: 25 }, ask);
    await vi.advanceTimersByTimeAsync(MAX_RESOLUTION_MS / 2);
    const late = Array.from({ length: 25 }, ask);
    await vi.advanceTimersByTimeAsync(0);
    // The apex's keys (a question of its own, on this one's deadline) and the question itself.
    expect(upstream.asked).toEqual([`${APEX}/DNSKEY`, `${name}/MAP`]);
    // One deadline, one timer: none per caller, none for the keys.
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(MAX_RESOLUTION_MS / 2 - 1);
    expect(settledAt).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    const results = await Promise.all([...early, ...late]);
    expect(results.every(isTimeout), JSON.stringify(results[0])).toBe(true);
    // The callers who joined halfway have their answer at the question's deadline, not at theirs.
    expect(settledAt).toHaveLength(50);
    expect(new Set(settledAt)).toEqual(new Set([started + MAX_RESOLUTION_MS]));
    expect(vi.getTimerCount()).toBe(0);
    expect(stage.counters.cacheMisses).toBe(50);
    // RFC 9520: the timeout is remembered; asked again, nothing is sent.
    expect(isTimeout(await askQuestion(stage, name, 'MAP'))).toBe(true);
    expect(upstream.asked).toHaveLength(2);
    expect(stage.counters.failureCacheHits).toBe(1);
  });

  it('asks a zone’s keys once for every question that needs them, callers from outside included', async () => {
    const upstream = silentUpstream();
    const stage = stageOver(upstream);
    const questions = [
      askQuestion(stage, `a.${APEX}`, 'MAP'),
      askQuestion(stage, `b.${APEX}`, 'MAPREF'),
      // A DNS client asking for the keys itself joins the question the first resolution started.
      askQuestion(stage, APEX, 'DNSKEY'),
    ];
    await vi.advanceTimersByTimeAsync(0);
    expect([...upstream.asked].sort()).toEqual(
      [`${APEX}/DNSKEY`, `a.${APEX}/MAP`, `b.${APEX}/MAPREF`].sort(),
    );
    // A deadline per question from outside; the keys question runs on the first one's.
    expect(vi.getTimerCount()).toBe(2);
    await vi.advanceTimersByTimeAsync(MAX_RESOLUTION_MS);
    expect((await Promise.all(questions)).every(isTimeout)).toBe(true);
    expect(upstream.asked).toHaveLength(3);
  });
});

describe('startDeadline', () => {
  it('ends a wait at the deadline, and after it waits no more', async () => {
    const deadline = startDeadline(100);
    const never = new Promise<string>(() => undefined);
    const waiting = deadline.within(never);
    await vi.advanceTimersByTimeAsync(99);
    expect(deadline.expired()).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await waiting).toBe(EXPIRED);
    expect(deadline.expired()).toBe(true);
    expect(await deadline.within(Promise.resolve('late'))).toBe(EXPIRED);
  });

  it('gives the work its value before the deadline, and its timer stops on release', async () => {
    const deadline = startDeadline(100);
    expect(await deadline.within(Promise.resolve('done'))).toBe('done');
    expect(vi.getTimerCount()).toBe(1);
    deadline.release();
    expect(vi.getTimerCount()).toBe(0);
    // A wait after the release sets it again, for the same point in time.
    const waiting = deadline.within(new Promise<string>(() => undefined));
    await vi.advanceTimersByTimeAsync(100);
    expect(await waiting).toBe(EXPIRED);
  });
});
