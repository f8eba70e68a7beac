import { portableEd25519 } from '../../common/src/protocol/ed25519.js';

/**
 * The recipient's key, made and kept in this browser (docs/recipients.md, "The recipient page"):
 * one per CSI, with the DP's attestation of it and the last `seq` used, in IndexedDB. The key
 * never leaves the browser: the page sends its public key and signatures only.
 *
 * - WebCrypto Ed25519 (RFC 8032 through the Web Cryptography API), generated non-extractable:
 *   the private key is a `CryptoKey` that script can sign with but never read, stored as such
 *   (IndexedDB keeps a CryptoKey by structured clone).
 * - Where the browser has no Ed25519 in WebCrypto: the portable path, `@noble/ed25519` through
 *   common's `protocol/ed25519.ts` (the CLI's signing module), with a 32-octet seed from
 *   `crypto.getRandomValues` stored in IndexedDB. Anyone who can run script on this origin can
 *   read it, as they could use a non-extractable key; it is never sent.
 */

/** The IndexedDB database of the page. */
export const KEY_DB_NAME = 'mimi-recipient';
/** Its version: 1, one object store. */
export const KEY_DB_VERSION = 1;
/** The object store: one record per CSI (canonical), keyed by `csi`. */
export const KEY_STORE = 'recipients';
/** Octets of an Ed25519 seed (RFC 8032 §5.1.5). */
export const SEED_OCTETS = 32;

/** How a key signs. */
export type KeyBackend = 'webcrypto' | 'portable';

/** One CSI's key and what the DP gave for it, as stored. */
export interface RecipientRecord {
  /** The canonical CSI, as the DP spelled it (`tel:+…` / `mailto:…`). */
  readonly csi: string;
  readonly backend: KeyBackend;
  /** The Ed25519 public key, 32 octets. */
  readonly publicKey: Uint8Array;
  /** WebCrypto: the non-extractable private key. */
  readonly privateKey?: CryptoKey;
  /** Portable: the seed. */
  readonly seed?: Uint8Array;
  /** The encoded attestation of the CSI to this key, once confirmed. */
  readonly attestation?: Uint8Array;
  /** The highest `seq` signed with this key (mapping or removal); 0 before any. */
  readonly seq: number;
}

/** Signs with a stored key. */
export async function signWith(record: RecipientRecord, message: Uint8Array): Promise<Uint8Array> {
  if (record.backend === 'webcrypto') {
    if (record.privateKey === undefined) throw new Error('the stored key has no private key');
    return new Uint8Array(
      await crypto.subtle.sign({ name: 'Ed25519' }, record.privateKey, bytesOf(message)),
    );
  }
  if (record.seed === undefined) throw new Error('the stored key has no seed');
  return portableEd25519.sign(message, record.seed);
}

/** A fresh key for `csi`: WebCrypto Ed25519 when the browser has it, else the portable path. */
export async function newKey(csi: string): Promise<RecipientRecord> {
  try {
    const pair = (await crypto.subtle.generateKey({ name: 'Ed25519' }, false, [
      'sign',
      'verify',
    ])) as CryptoKeyPair;
    const publicKey = new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey));
    return { csi, backend: 'webcrypto', publicKey, privateKey: pair.privateKey, seq: 0 };
  } catch {
    // No Ed25519 in this browser's WebCrypto (NotSupportedError), or a refusal: the portable path.
    const seed = crypto.getRandomValues(new Uint8Array(SEED_OCTETS));
    return {
      csi,
      backend: 'portable',
      publicKey: portableEd25519.publicKeyFromSeed(seed),
      seed,
      seq: 0,
    };
  }
}

/** An ArrayBuffer-backed copy, as WebCrypto's types ask. */
function bytesOf(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return copy;
}

function openDb(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(KEY_DB_NAME, KEY_DB_VERSION);
    request.onupgradeneeded = () => {
      if (!request.result.objectStoreNames.contains(KEY_STORE)) {
        request.result.createObjectStore(KEY_STORE, { keyPath: 'csi' });
      }
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error ?? new Error('IndexedDB could not be opened'));
  });
}

async function withStore<T>(
  mode: IDBTransactionMode,
  act: (store: IDBObjectStore) => IDBRequest,
): Promise<T> {
  const db = await openDb();
  try {
    return await new Promise<T>((resolve, reject) => {
      const tx = db.transaction(KEY_STORE, mode);
      const request = act(tx.objectStore(KEY_STORE));
      tx.oncomplete = () => resolve(request.result as T);
      tx.onerror = () => reject(tx.error ?? new Error('IndexedDB transaction failed'));
      tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
    });
  } finally {
    db.close();
  }
}

/** The stored record of `csi`, or undefined. */
export async function loadRecord(csi: string): Promise<RecipientRecord | undefined> {
  const value = await withStore<RecipientRecord | undefined>('readonly', (s) => s.get(csi));
  return value ?? undefined;
}

/** Every stored record, by CSI. */
export async function loadRecords(): Promise<RecipientRecord[]> {
  return await withStore<RecipientRecord[]>('readonly', (s) => s.getAll());
}

/** Stores (or replaces) the record of its CSI. */
export async function saveRecord(record: RecipientRecord): Promise<void> {
  await withStore<IDBValidKey>('readwrite', (s) => s.put(record));
}

/** Forgets the record of `csi` (its key is gone from this browser). */
export async function deleteRecord(csi: string): Promise<void> {
  await withStore<undefined>('readwrite', (s) => s.delete(csi));
}
