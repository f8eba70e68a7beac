import { canonicalName, type RRType } from '@mimi-discovery/common';
import { cachedTtl, cacheSlot, SingleFlight, type ResolverCache } from './cache.js';
import { clientTtl, freshClientTtl } from './client-ttl.js';
import { startDeadline } from './deadline.js';
import type { FailureCache } from './failure-cache.js';
import {
  createIterator,
  isFailure,
  iterate,
  type Failure,
  type Iterator,
  type IteratorInit,
  type QuestionState,
  type Resolution,
  type ZoneCut,
} from './iterator.js';
import { MAX_RESOLUTION_MS, STALE_ANSWER_TTL_SECONDS } from './limits.js';
import { createBudget } from './validator.js';

/**
 * The question stage: every question (name, type) the resolver resolves — for a DNS client, for
 * aggregation, or for the keys of a zone cut on the way — passes here, and here only is it
 * cached, single-flighted and given its deadline:
 *
 * ```
 * askQuestion(name, type) ─ answer cache ─ failure cache (RFC 9520) ─ in flight? ─ join
 *                                                                         └─ new QuestionState
 *                                                                            (deadline, budget)
 *                                                                            ─ iterate ─ settle
 * ```
 *
 * One {@link QuestionState} per question in flight, made by its first caller, carries its
 * deadline ({@link MAX_RESOLUTION_MS}) and its budget; every later caller joins it and has its
 * answer when the question's deadline says so, not later. The question for a zone's keys that a
 * resolution needs ({@link zoneKeys}) is a question like any other — one DNSKEY question to the
 * zone however many questions need its keys — but a resolution that starts it lends it its
 * deadline and budget, so that a hostile DNSKEY RRset is validated once, on the budget of the
 * resolution that needed it first.
 *
 * Settling records what the question found: an answer or a denial in the cache for its TTL, a
 * failure in the failure cache (once, even when several questions fail by it). A caller from
 * outside ({@link askQuestion}) gets a stale copy instead of a server failure when there is one
 * (RFC 8767 §4: not for bogus data, nor for a limit); the iteration itself never uses stale data.
 */

/**
 * A resolved question as a caller from outside gets it, possibly from stale cache: `ttl` is the
 * TTL to give clients (`client-ttl.ts`), and `usable` the seconds during which it may be given
 * with that TTL (0 for a stale answer).
 */
export type Resolved = Resolution & {
  readonly stale?: boolean;
  readonly usable?: number;
  /** A failure answered from the failure cache (RFC 9520), not resolved now. */
  readonly cached?: boolean;
  /** An answer or denial from the answer cache, not resolved now. */
  readonly fromCache?: boolean;
};

/** Cached validated questions (answers and denials), by `name/type`. */
export const ANSWERS = cacheSlot<Resolution>('answer');

/** Counts kept for `stats()`: what callers from outside asked, and the validation failures. */
export interface QuestionCounters {
  cacheHits: number;
  cacheMisses: number;
  failureCacheHits: number;
  signatureVerifications: number;
  /** Validation failures by reason (`bogus-signature`, `no-ds-match`, …). */
  readonly validationFailures: Record<string, number>;
}

/** What the question stage is given: the iterator's init, less what the stage provides. */
export interface QuestionStageInit extends Omit<IteratorInit, 'keys' | 'onBogus'> {
  readonly failures: FailureCache;
  readonly counters: QuestionCounters;
}

/** The question stage's state. */
export interface QuestionStage {
  readonly iterator: Iterator;
  readonly cache: ResolverCache;
  readonly failures: FailureCache;
  readonly counters: QuestionCounters;
  /** Questions in flight, by `name/type`: the one single-flight a question passes. */
  readonly inFlight: SingleFlight<Resolution>;
}

/** Creates the question stage and the iterator it runs. */
export function createQuestionStage(init: QuestionStageInit): QuestionStage {
  const { failures, counters, ...iteratorInit } = init;
  const stage: QuestionStage = {
    iterator: createIterator({
      ...iteratorInit,
      keys: (state, cut) => zoneKeys(stage, state, cut),
      onBogus: (state, reason) => {
        counters.validationFailures[reason] = (counters.validationFailures[reason] ?? 0) + 1;
        init.log.info('bogus', { type: state.type, reason });
      },
    }),
    cache: init.cache,
    failures,
    counters,
    inFlight: new SingleFlight<Resolution>(),
  };
  return stage;
}

/** The key of a question in the answer cache and in flight. */
function questionKey(name: string, type: RRType): string {
  return `${canonicalName(name)}/${type}`;
}

/**
 * One question for a caller outside the iteration (a DNS client, aggregation): the answer cache,
 * then the failure cache, then the question in flight or a new one; a server failure is answered
 * stale when it can be. What the caller gets goes to clients, so its TTL is the client TTL of
 * `client-ttl.ts`: a cached answer past the part of its life in which it is given to clients is
 * asked again.
 */
export async function askQuestion(
  stage: QuestionStage,
  name: string,
  type: RRType,
): Promise<Resolved> {
  const key = questionKey(name, type);
  const hit = stage.cache.get(ANSWERS, key);
  const given = hit === undefined ? undefined : clientTtl(hit.lifetime, hit.ttl);
  if (hit !== undefined && given !== undefined) {
    stage.counters.cacheHits++;
    return { ...hit.value, ttl: given.ttl, usable: given.usable, fromCache: true } as Resolved;
  }
  const failed = stage.failures.find(name, type);
  if (failed !== undefined) {
    stage.counters.failureCacheHits++;
    const after = afterFailure(stage, key, failed.failure);
    return isFailure(after) ? { ...after, cached: true } : after;
  }
  stage.counters.cacheMisses++;
  const resolution = await stage.inFlight.run(key, () =>
    settle(stage, newQuestion(stage, name, type), true),
  );
  if (isFailure(resolution)) return afterFailure(stage, key, resolution);
  const fresh = freshClientTtl(cachedTtl(resolution.ttl));
  return { ...resolution, ttl: fresh.ttl, usable: fresh.usable };
}

/**
 * One question asked again past the answer cache and the failure cache (joining one in flight):
 * for an RRset a caller has reason to think changed since it was cached (an AUTHKEY RRset that
 * lacks the prover of a verified attestation, `authkey-refetch.ts`). What it finds replaces the
 * cached answer. The caller bounds how often it asks.
 */
export async function askQuestionAgain(
  stage: QuestionStage,
  name: string,
  type: RRType,
): Promise<Resolved> {
  const key = questionKey(name, type);
  stage.counters.cacheMisses++;
  const resolution = await stage.inFlight.run(key, () =>
    settle(stage, newQuestion(stage, name, type), true),
  );
  if (isFailure(resolution)) return resolution;
  const fresh = freshClientTtl(cachedTtl(resolution.ttl));
  return { ...resolution, ttl: fresh.ttl, usable: fresh.usable };
}

/** A question's state with its own deadline and budget, from now. */
function newQuestion(stage: QuestionStage, name: string, type: RRType): QuestionState {
  const deadline = startDeadline(MAX_RESOLUTION_MS);
  const { counters } = stage;
  return {
    name,
    type,
    deadline,
    budget: {
      verifications: createBudget({
        ...(stage.iterator.init.verifier === undefined
          ? {}
          : { verifier: stage.iterator.init.verifier }),
        expired: deadline.expired,
        onVerify: () => {
          counters.signatureVerifications++;
        },
      }),
      queries: 0,
      referrals: 0,
    },
  };
}

/**
 * The question (cut, DNSKEY) for `parent`'s resolution, which needs the cut's keys: cached, or
 * in flight, or started at `cut` on `parent`'s deadline and budget (see the module comment).
 * Neither counted as a caller's question nor answered stale: it is a step of `parent`'s.
 */
function zoneKeys(
  stage: QuestionStage,
  parent: QuestionState,
  cut: ZoneCut,
): Resolution | Promise<Resolution> {
  const key = questionKey(cut.zone, 'DNSKEY');
  const hit = stage.cache.get(ANSWERS, key);
  if (hit !== undefined) return { ...hit.value, ttl: hit.ttl } as Resolution;
  return stage.inFlight.run(key, () =>
    settle(
      stage,
      {
        name: cut.zone,
        type: 'DNSKEY',
        deadline: parent.deadline,
        budget: parent.budget,
        start: cut,
      },
      false,
    ),
  );
}

/**
 * Resolves `state`'s question and records what it found: an answer or a denial in the cache for
 * its TTL, a failure in the failure cache (a failure of the zone's keys that several questions
 * end with is recorded once: `FailureCache.record`). A name outside the apex is refused before
 * anything is asked: nothing to remember. `owned`: the deadline is the question's own, and its
 * timer stops with it.
 */
async function settle(
  stage: QuestionStage,
  state: QuestionState,
  owned: boolean,
): Promise<Resolution> {
  try {
    const resolution = await iterate(stage.iterator, state);
    if (isFailure(resolution)) {
      if (resolution.kind === 'error' && resolution.reason === 'refused') return resolution;
      stage.failures.record(state.name, state.type, resolution);
      return resolution;
    }
    stage.failures.forget(state.name, state.type);
    stage.cache.set(ANSWERS, questionKey(state.name, state.type), resolution, resolution.ttl);
    return resolution;
  } finally {
    if (owned) state.deadline.release();
  }
}

/**
 * What a failed question answers a caller: a stale copy of its answer when the servers failed
 * (RFC 8767 §4: not for bogus data, nor for a limit), else the failure.
 */
function afterFailure(stage: QuestionStage, key: string, failure: Failure): Resolved {
  if (failure.kind === 'error' && (failure.reason === 'timeout' || failure.reason === 'servfail')) {
    const stale = stage.cache.getStale(ANSWERS, key);
    if (stale !== undefined) {
      return { ...stale, ttl: STALE_ANSWER_TTL_SECONDS, stale: true, usable: 0 } as Resolved;
    }
  }
  return failure;
}
