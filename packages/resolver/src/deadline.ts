/**
 * Deadlines: how long one resolution may take (`MAX_RESOLUTION_MS`), on monotonic time.
 * This module is the only place the resolver reads monotonic time (`performance.now()`): a
 * deadline bounds waiting, and an RTT sample or a front end's request duration measures it,
 * none of which may jump with the wall clock. Cached data lives by the injected clock in seconds instead (`cache.ts`).
 *
 * A deadline belongs to the state of one unit of work: a question (`questions.ts`, shared with
 * the question for its zone's keys that it starts) or a discovery (`resolver.ts`). Past it, the
 * work sends nothing more and verifies nothing more ({@link Deadline.expired}), and every wait
 * on work it does not control — an upstream exchange, a question another caller started — ends
 * at once ({@link Deadline.within}), all with one timer.
 *
 * Worked example: a question starts at t=0 with a 10 s deadline and asks a server that never
 * answers; another caller joins the question at t=4 s. At t=10 s the wait for the server ends
 * with {@link EXPIRED}, the question ends as a timeout, and both callers have their answer: the
 * deadline is the question's, not each caller's.
 */

/** What {@link Deadline.within} gives when the deadline passes first. */
export const EXPIRED: unique symbol = Symbol('expired');
/** The type of {@link EXPIRED}. */
export type Expired = typeof EXPIRED;

/** The deadline of one resolution; see the module comment. */
export interface Deadline {
  /** The milliseconds it was set for, for error details. */
  readonly ms: number;
  /** Whether it has passed: no query is sent and no signature verified after it. */
  expired(): boolean;
  /** `work`'s value, or {@link EXPIRED} when the deadline passes first. `work` is not stopped. */
  within<T>(work: Promise<T>): Promise<T | Expired>;
  /**
   * Stops the timer once the work it bounds is over. A later {@link Deadline.within} (by a
   * question that shares this deadline and outlives its owner) sets it again.
   */
  release(): void;
}

/** The monotonic clock in milliseconds, for deadlines and round-trip times. */
export function monotonicMs(): number {
  return performance.now();
}

/** A deadline `ms` milliseconds from now. The timer is set by the first wait, not before. */
export function startDeadline(ms: number): Deadline {
  const at = monotonicMs() + ms;
  const expired = (): boolean => monotonicMs() >= at;
  let timer: NodeJS.Timeout | undefined;
  let reached: Promise<Expired> | undefined;
  return {
    ms,
    expired,
    within<T>(work: Promise<T>): Promise<T | Expired> {
      if (expired()) {
        // Whoever waits no longer cares about `work`; its fault, if any, is nobody's to report.
        work.catch(() => undefined);
        return Promise.resolve(EXPIRED);
      }
      reached ??= new Promise<Expired>((resolve) => {
        timer = setTimeout(() => resolve(EXPIRED), Math.max(0, at - monotonicMs()));
        // The work waited for keeps the process alive as long as it needs to; the timer need not.
        timer.unref();
      });
      return Promise.race([work, reached]);
    },
    release(): void {
      clearTimeout(timer);
      timer = undefined;
      reached = undefined;
    },
  };
}
