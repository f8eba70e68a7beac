/**
 * The bounds of a DP's answer workers (`answer-workers.ts`), apart from the code that forks
 * them so that the config schema can name them without loading `node:cluster`.
 */

/** Most answer workers a config may ask for (`answerWorkers`): more than any host's cores. */
export const MAX_ANSWER_WORKERS = 64;

/**
 * Default of `answerWorkerAckMs`: how long a write waits for every answer worker to confirm that
 * it renewed its read snapshot. A worker that answers queries confirms within milliseconds; one
 * that has not after this long is stuck, and is killed and replaced.
 */
export const ANSWER_WORKER_ACK_MS = 2_000;
/** Smallest `answerWorkerAckMs`: below it a busy but healthy worker would be killed. */
export const MIN_ANSWER_WORKER_ACK_MS = 50;
/** Largest `answerWorkerAckMs`: a registration's `201` never waits longer on a stuck worker. */
export const MAX_ANSWER_WORKER_ACK_MS = 60_000;

/** Longest wait for a new answer worker to open the store and bind its listeners. */
export const ANSWER_WORKER_START_MS = 30_000;

/** Longest wait for an answer worker to stop at `close()` before it is killed. */
export const ANSWER_WORKER_CLOSE_MS = 5_000;

/**
 * Restarts of answer workers allowed per {@link ANSWER_WORKER_RESTART_WINDOW_MS}: a worker
 * that dies at once each time (a broken store, a port taken) is not forked in a tight loop;
 * past the bound the next restart waits for the window to move on.
 */
export const ANSWER_WORKER_RESTARTS_PER_WINDOW = 10;
/** The window of {@link ANSWER_WORKER_RESTARTS_PER_WINDOW}. */
export const ANSWER_WORKER_RESTART_WINDOW_MS = 60_000;

/** How often each answer worker reports its counts (queries, TCP connections) to the writer. */
export const ANSWER_WORKER_STATS_MS = 1_000;
