import { clientKeyOf } from '@mimi-discovery/common';

/**
 * The concurrency caps of the relay: at most `max` forwards in progress over every client, and
 * `perClient` for one client (IPv4 address, IPv6 /64, as every per-client limit of the
 * project). A slot is taken after the request body is read, so a client dripping its body holds
 * a connection (bounded by the connection gate and the request deadline), never a forward.
 *
 * Worked example, `max` 4 and `perClient` 2: clients A, A, B take slots; A's third request is
 * `client-busy` (429); B, C take the last slot and then `busy` (503); when one of A's forwards
 * ends its `release` frees the slot for anyone.
 *
 * The table holds only clients with a forward in progress, so it is bounded by `max`.
 */

/** The outcome of taking a slot. */
export type SlotOutcome =
  | { readonly kind: 'taken'; readonly release: () => void }
  | { readonly kind: 'client-busy' }
  | { readonly kind: 'busy' };

/** Forward slots, overall and per client. */
export interface ForwardSlots {
  take(address: string): SlotOutcome;
  /** Forwards in progress now. */
  readonly inFlight: number;
}

/** Slots for `max` forwards at once, `perClient` of one client. */
export function createForwardSlots(max: number, perClient: number): ForwardSlots {
  for (const [name, value] of [
    ['max', max],
    ['perClient', perClient],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new RangeError(`${name} must be a positive integer, got ${value}`);
    }
  }
  const byClient = new Map<string, number>();
  let inFlight = 0;
  return {
    take(address) {
      const key = clientKeyOf(address);
      const held = byClient.get(key) ?? 0;
      if (held >= perClient) return { kind: 'client-busy' };
      if (inFlight >= max) return { kind: 'busy' };
      byClient.set(key, held + 1);
      inFlight++;
      let released = false;
      return {
        kind: 'taken',
        release() {
          if (released) return;
          released = true;
          inFlight--;
          const left = (byClient.get(key) ?? 1) - 1;
          if (left === 0) byClient.delete(key);
          else byClient.set(key, left);
        },
      };
    },
    get inFlight() {
      return inFlight;
    },
  };
}
