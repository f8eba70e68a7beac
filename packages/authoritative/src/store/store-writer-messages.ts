import type { DiscoveryStore } from './store.js';

/**
 * The messages between an LMDB store's own thread (`lmdb-store.ts`) and its writer thread
 * (`store-writer.ts`), in a module of their own so that each side imports them without
 * importing the other. Request `0` is implicit: the writer answers it once the store is open.
 *
 * Worked example: `{ id: 7, method: 'apply', args: [origin, changes] }` goes out; once the commit
 * is on disk `{ id: 7, value: { serial: 12 } }` comes back, or
 * `{ id: 7, error: { code: 'ERR_STORE_BAD_CHANGE', message } }` having changed nothing.
 */

/** A request from the store's own thread. */
export type StoreWriterRequest =
  | { id: number; method: 'addZone'; args: Parameters<DiscoveryStore['addZone']> }
  | { id: number; method: 'removeZone'; args: Parameters<DiscoveryStore['removeZone']> }
  | { id: number; method: 'apply'; args: Parameters<DiscoveryStore['apply']> }
  | {
      id: number;
      method: 'applyOperation';
      args: Parameters<DiscoveryStore['applyOperation']>;
    }
  | { id: number; method: 'resign'; args: Parameters<DiscoveryStore['resign']> }
  | { id: number; method: 'setNsec3'; args: Parameters<DiscoveryStore['setNsec3']> }
  | { id: number; method: 'refreshKeys'; args: Parameters<DiscoveryStore['refreshKeys']> }
  | { id: number; method: 'close' };

/** The answer to one request. */
export type StoreWriterReply =
  { id: number; value: unknown } | { id: number; error: { code?: string; message: string } };
