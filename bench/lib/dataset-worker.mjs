// @ts-check
import { performance } from 'node:perf_hooks';
import { parentPort } from 'node:worker_threads';
import { recipientKeys, signRange } from './dataset-sign.mjs';

/**
 * A worker thread of `loadDataSet` (dataset.ts): signs the mappings of one range of CSIs per
 * message. Plain JavaScript over the built packages, because a worker thread does not inherit
 * vite-node's TypeScript loader.
 *
 * In:  `{ id, start, end, now }`
 * Out: `{ id, names, offsets, bytes, busyMs }` (the buffers transferred, see `SignedRange`), or
 *      `{ id, error }` when signing failed.
 */

if (parentPort === null) throw new Error('dataset-worker.mjs runs as a worker thread only');
const port = parentPort;
const keys = recipientKeys();

port.on(
  'message',
  (/** @type {{ id: number; start: number; end: number; now: number }} */ task) => {
    const started = performance.now();
    try {
      const { names, offsets, bytes } = signRange(task.start, task.end, task.now, keys);
      const busyMs = performance.now() - started;
      port.postMessage({ id: task.id, names, offsets, bytes, busyMs }, [
        offsets.buffer,
        bytes.buffer,
      ]);
    } catch (error) {
      port.postMessage({
        id: task.id,
        error: error instanceof Error ? error.stack : String(error),
      });
    }
  },
);
