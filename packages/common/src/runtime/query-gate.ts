/**
 * A query gate: a server's per-client limits, asked about each query before anything else is
 * done for it — before the answer cache, so a cached answer costs a client as much as a fresh one
 * (else a client could enumerate whatever other clients asked for) — and after only the two
 * checks that need no decoding (too short, QR set: `respond.ts`). The gate reads what it needs
 * from the octets (`questionOf` in `protocol/peek.ts`) and passes the query on, or refuses it.
 *
 * A refused query is answered with the response the gate builds (a resolver: REFUSED with an
 * Extended DNS Error, RFC 8914), marked `limited` with the seconds to wait, so that DoH can answer
 * 429 with `Retry-After` instead (`doh-server.ts`); UDP and TCP send the response.
 *
 * Worked example: a resolver's gate that has spent a client's budget refuses `…e164.mimi.arpa
 * MAP` with `{ kind: 'refuse', retryAfter: 43, respond }`; over UDP the client gets REFUSED
 * with EDE 18 "rate limited; retry in 43 s", over DoH a 429 with `Retry-After: 43`.
 */
import type { Message } from '../protocol/records.js';
import { HEADER_OCTETS, decodeMessage, encodeMessage } from '../protocol/wire.js';
import type { Logger } from './log.js';
import type { Answer, QueryContext } from './respond.js';
import type { ResponseRateLimiter } from './rrl.js';

/** What a gate decides about one query. */
export type GateDecision =
  | { readonly kind: 'pass' }
  | {
      readonly kind: 'refuse';
      /** Whole seconds until the client may ask again (`Retry-After`). */
      readonly retryAfter: number;
      /** The response that refuses `query` (over UDP and TCP). */
      readonly respond: (query: Message) => Message;
    };

/** Decides about the query `bytes` from the client of `context`; must not throw. */
export type QueryGate = (bytes: Uint8Array, context: QueryContext) => GateDecision;

/**
 * The per-client limits a listener applies: the gate (every listener), and Response Rate
 * Limiting of what is sent (UDP only, `rrl.ts`).
 */
export interface ListenerLimits {
  readonly gate?: QueryGate | undefined;
  readonly rrl?: ResponseRateLimiter | undefined;
}

/** A header-only REFUSED for `bytes` (id, opcode, RD and CD of the query; every count 0). */
function headerOnlyRefused(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_OCTETS);
  out.set(bytes.subarray(0, 4));
  // QR, the query's opcode, RD and CD; AA, TC, RA, Z, AD cleared; rcode 5 (REFUSED).
  out[2] = 0x80 | ((bytes[2] as number) & 0x79);
  out[3] = ((bytes[3] as number) & 0x10) | 5;
  return out;
}

/**
 * The answer to a query a gate refused: the gate's response, encoded, marked `limited`. A query
 * that does not decode gets undefined, and goes on to its FORMERR (no work is done for it).
 */
export function refusedAnswer(
  bytes: Uint8Array,
  decision: Extract<GateDecision, { kind: 'refuse' }>,
  log: Logger,
): Answer | undefined {
  let query: Message;
  try {
    query = decodeMessage(bytes);
  } catch {
    return undefined;
  }
  const limited = { retryAfter: decision.retryAfter };
  try {
    const response = decision.respond(query);
    return { kind: 'reply', wire: encodeMessage(response), response, query, limited };
  } catch (error) {
    // The gate's response is built from a decoded query and carries no records; reaching this
    // is a fault of the gate, and the client is still refused.
    log.error('refusal-not-encoded', { error });
    return { kind: 'reply', wire: headerOnlyRefused(bytes), limited };
  }
}
