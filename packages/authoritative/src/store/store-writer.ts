/**
 * The writer thread of an LMDB store opened with `writer: 'thread'` (`lmdb-store.ts`): it opens
 * the same LMDB environment as the thread that serves queries and runs every write there —
 * planning, signing, encoding and the commit — so that a burst of publishes never holds up the
 * answering path. Messages in: `{ id, method, args }` for `addZone`, `removeZone`, `apply`,
 * `applyOperation`, `setNsec3`, `refreshKeys` and `resign`, and `{ id, method: 'close' }`; out: `{ id, value }` or `{ id, error: { code,
 * message } }` once the write is durable (or failed, having changed nothing).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openLmdbStore, type StoreWriterData } from './lmdb-store.js';
import type { DiscoveryStore } from './store.js';
import { StoreError } from './store-error.js';
import type { StoreWriterReply, StoreWriterRequest } from './store-writer-messages.js';

async function serve(): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error('store-writer.js runs as a worker thread');
  const { options } = workerData as StoreWriterData;
  let store: DiscoveryStore;
  try {
    store = await openLmdbStore({ ...options, writer: 'inline' });
  } catch (error) {
    port.postMessage({ id: 0, error: describe(error) } satisfies StoreWriterReply);
    return;
  }
  port.postMessage({ id: 0, value: 'ready' } satisfies StoreWriterReply);
  port.on('message', (request: StoreWriterRequest) => {
    const run = async (): Promise<unknown> => {
      switch (request.method) {
        case 'addZone':
          return store.addZone(...request.args);
        case 'removeZone':
          return store.removeZone(...request.args);
        case 'apply':
          return store.apply(...request.args);
        case 'applyOperation':
          return store.applyOperation(...request.args);
        case 'resign':
          return store.resign(...request.args);
        case 'setNsec3':
          return store.setNsec3(...request.args);
        case 'refreshKeys':
          return store.refreshKeys(...request.args);
        case 'close':
          await store.close();
          return undefined;
      }
    };
    run().then(
      (value) => {
        port.postMessage({ id: request.id, value } satisfies StoreWriterReply);
        if (request.method === 'close') port.close();
      },
      (error: unknown) =>
        port.postMessage({ id: request.id, error: describe(error) } satisfies StoreWriterReply),
    );
  });
}

function describe(error: unknown): { code?: string; message: string } {
  if (error instanceof StoreError) return { code: error.code, message: error.message };
  return { message: error instanceof Error ? error.message : String(error) };
}

await serve();
