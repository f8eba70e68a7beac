import { LRUCache } from 'lru-cache';
import { CsiError, parseCsi, type Csi } from '@mimi-discovery/common';
import { PARSED_CSI_ENTRY_OVERHEAD_OCTETS } from './limits.js';

/** Why an input is not a CSI: the code and message of the {@link CsiError} parseCsi threw. */
export interface CsiParseFailure {
  readonly code: string;
  readonly message: string;
}

/**
 * Parsed CSIs by input as given (`+44 20 7946 0018` → `tel:+442079460018`), or why the input is
 * not a CSI: a contact sync sends the same inputs again and again, and `parseCsi`
 * (libphonenumber for phone numbers) costs more than answering a CSI from the cache. A failure
 * is kept as its code and message, not as the error with its stack trace. Bounded by octets:
 * each entry counts its strings as UTF-16 plus {@link PARSED_CSI_ENTRY_OVERHEAD_OCTETS}; the
 * least recently used go first.
 */
export class CsiMemo {
  readonly #entries: LRUCache<string, Csi | CsiParseFailure>;

  /** `maxOctets` bounds what every entry counts together. */
  constructor(maxOctets: number) {
    this.#entries = new LRUCache<string, Csi | CsiParseFailure>({
      maxSize: Math.max(1, Math.floor(maxOctets)),
      sizeCalculation: (value, input) => entryOctets(input, value),
    });
  }

  /** `parseCsi(input)`, or the code and message of the {@link CsiError} it throws. */
  parse(input: string): Csi | CsiParseFailure {
    let value = this.#entries.get(input);
    if (value === undefined) {
      try {
        value = parseCsi(input);
      } catch (error) {
        // Any other error is a fault, not an answer about the input: thrown, not kept.
        if (!(error instanceof CsiError)) throw error;
        value = { code: error.code, message: error.message };
      }
      this.#entries.set(input, value);
    }
    return value;
  }

  /** Entries held. */
  get size(): number {
    return this.#entries.size;
  }

  /** Octets counted for the entries held. */
  get octets(): number {
    return this.#entries.calculatedSize;
  }

  /** Forgets every entry. */
  clear(): void {
    this.#entries.clear();
  }
}

function entryOctets(input: string, value: Csi | CsiParseFailure): number {
  const chars = input.length + (typeof value === 'string' ? value.length : value.message.length);
  return 2 * chars + PARSED_CSI_ENTRY_OVERHEAD_OCTETS;
}
