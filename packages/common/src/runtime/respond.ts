/**
 * Answering one DNS query, whatever the transport: bytes in, the response (or nothing) out.
 * Every listener (UDP, TCP, DoH) runs the same steps, so a query gets the same answer on each:
 *
 * 1. fewer octets than the header: dropped (nothing to answer to);
 * 2. a header with QR set: dropped, a response is never answered (RFC 1035 §4.1.1);
 * 3. bytes that do not decode strictly: FORMERR with the query's id and no question;
 * 4. EDNS version above 0: BADVERS (RFC 6891 §6.1.3);
 * 5. opcode other than QUERY: NOTIMP (RFC 1035 §4.1.1);
 * 6. QDCOUNT other than 1: FORMERR (RFC 9619);
 * 7. otherwise the handler answers; a handler that throws, or returns a message that does not
 *    encode, gets the client a SERVFAIL, and the fault is logged.
 *
 * With a {@link AnswerCache}, a query whose octets after the id were answered before gets that
 * answer again between steps 2 and 3, without decoding; each answer from step 7 is offered to it,
 * except the answers to AXFR and IXFR, which depend on more than the question.
 *
 * Zone transfers (RFC 5936, RFC 1995): a listener that can stream a response of many messages
 * (TCP) passes a {@link TransferHandler}, which step 7 gives the AXFR and IXFR questions instead
 * of the handler. The UDP listener may pass one for IXFR only, which it must answer with one
 * message (RFC 1995 §2); AXFR over UDP, and both over DoH, reach the handler, which refuses them
 * (RFC 5936 §4.2: not over UDP).
 *
 * Transaction signatures (TSIG, RFC 8945; `protocol/tsig.ts`): a query whose additional section
 * holds a TSIG record is verified between steps 3 and 4 with the listener's keys
 * ({@link TsigServerOptions}; none: every key is unknown). A TSIG out of place is answered
 * FORMERR (§5.1); an unknown key or a wrong MAC NOTAUTH with an unsigned TSIG carrying BADKEY or
 * BADSIG; a right MAC out of its time window (or truncated) NOTAUTH with a signed TSIG carrying
 * BADTIME (the server's time in its other data) or BADTRUNC (§5.2, §5.3.2). A query that verifies
 * goes on without its TSIG, with the key in `context.tsig`, and every message answering it is
 * signed (§5.3), each of a transfer over the MAC of the one before (§5.3.1). Answers to signed
 * queries are never put in the answer cache: their signature is of their time.
 *
 * With a {@link QueryLog}, every query answered from step 4 on, and every answer from the cache,
 * is recorded: name, type, transport, rcode and the client's address (which the log writes only
 * when configured to). Bytes that do not decode, and queries of other than one question, name
 * nothing to record.
 *
 * With a {@link QueryGate} (a server's per-client limits), each query that passed steps 1 and 2
 * is put to it first: a refused query gets the gate's response, marked `limited`, and nothing
 * else is done for it. With a {@link AnswerCache}, a query whose octets after the id were
 * answered before gets that answer again between steps 2 and 3 (after the gate), without
 * decoding; each answer from step 7 is offered to it.
 *
 * Worked example: the 12 octets `ab cd 00 00 00 02 00 00 00 00 00 00` (id 0xabcd, QDCOUNT 2,
 * but no question follows) do not decode, so step 3 answers `ab cd 81 01 00 00 …`: id 0xabcd,
 * QR, FORMERR, all counts 0.
 */
import { HEADER_OCTETS, decodeMessage, encodeMessage, rcodeToCode } from '../protocol/wire.js';
import {
  RR_TYPE_TSIG,
  appendUnsignedTsig,
  badTimeOtherData,
  signMessage,
  tsigRecordOctets,
  verifyRequest,
  type TsigErrorName,
  type TsigKey,
  type TsigKeyring,
} from '../protocol/tsig.js';
import { systemClock, type Clock } from './clock.js';
import type { Logger } from './log.js';
import type { AnswerCache } from './answer-cache.js';
import type { QueryLog } from './query-log.js';
import { canonicalName } from '../protocol/names.js';
import { responseFlags, type Message, type Rcode } from '../protocol/records.js';

/** Where a query came from. `remoteAddress` is for connection-level decisions, never for logs with a query name. */
export interface QueryContext {
  readonly transport: 'udp' | 'tcp' | 'doh';
  readonly remoteAddress: string;
  /** For DoH, the HTTP version the client negotiated. */
  readonly httpVersion?: '1.1' | '2';
  /** The key a query was signed with, when it carried a TSIG that verified (RFC 8945). */
  readonly tsig?: VerifiedTsig;
}

/** A verified TSIG of a query: its key, and its MAC, over which the answer is signed. */
export interface VerifiedTsig {
  readonly key: TsigKey;
  readonly mac: Uint8Array;
}

/** The TSIG keys of a listener and the clock their time window is checked against. */
export interface TsigServerOptions {
  readonly keys: TsigKeyring;
  readonly now: Clock;
  /** Called once per signed query that was refused, with why (for metrics). */
  readonly onRefused?: (error: TsigErrorName | 'FORMERR') => void;
}

/** The TSIG step of a listener without keys: every signed query names an unknown key. */
const NO_TSIG_KEYS: TsigServerOptions = Object.freeze({
  keys: new Map<string, TsigKey>(),
  now: systemClock,
});

/**
 * Answers one well-formed query (one question, opcode QUERY, EDNS version 0 or no EDNS). The
 * server has already turned away everything else. Throwing is a fault: the client gets SERVFAIL.
 */
export type QueryHandler = (query: Message, context: QueryContext) => Message | Promise<Message>;

/**
 * A zone transfer's response (RFC 5936 §2.2): the messages of the transfer, in order, produced as
 * the listener sends them (so one connection holds at most one message it has not written), or
 * one message (a refusal). Ending the iteration early (`return()`, as `for await … break` does)
 * tells the handler the transfer was cut off.
 */
export type TransferResponse = Message | AsyncIterable<Message>;

/**
 * Answers an AXFR or IXFR query (one question, opcode QUERY, checked as for a
 * {@link QueryHandler}): over TCP with a stream of messages or one; over UDP (IXFR only,
 * RFC 1995 §2) with one message, a stream being a fault. Throwing is a fault: the client gets
 * SERVFAIL.
 */
export type TransferHandler = (query: Message, context: QueryContext) => TransferResponse;

/**
 * The EDNS UDP payload size this project advertises and defaults to: 1232 octets, the value of
 * DNS flag day 2020, which fits an IPv6 packet on a 1280-octet MTU without fragmentation.
 */
export const EDNS_UDP_PAYLOAD_OCTETS = 1232;

/** The largest UDP response to a query without EDNS (RFC 1035 §2.3.4, §4.2.1). */
export const MIN_UDP_PAYLOAD_OCTETS = 512;

const OPCODE_QUERY = 0;
const OPCODE_MASK = 0x7800;
const FLAG_QR = 0x8000;
const FLAG_RD = 0x0100;
const FLAG_CD = 0x0010;

/**
 * What a query gate (a server's per-client limits) decides about one query, before anything else
 * is done for it: before the answer cache, so a cached answer costs a client as much as a fresh
 * one (else a client could enumerate whatever other clients asked for), and after only the two
 * checks that need no decoding (steps 1 and 2). A refused query is answered with the response
 * the gate builds (a resolver: REFUSED with an Extended DNS Error, RFC 8914), marked `limited`
 * with the seconds to wait, so that DoH can answer 429 with `Retry-After` instead
 * (`doh-server.ts`); UDP and TCP send the response.
 */
export type GateDecision =
  | { readonly kind: 'pass' }
  | {
      readonly kind: 'refuse';
      /** Whole seconds until the client may ask again (`Retry-After`). */
      readonly retryAfter: number;
      /** The response that refuses `query` (over UDP and TCP). */
      readonly respond: (query: Message) => Message;
    };

/**
 * Decides about the query `bytes` from the client of `context` (it reads what it needs from the
 * octets, `questionOf` in `protocol/peek.ts`); must not throw.
 */
export type QueryGate = (bytes: Uint8Array, context: QueryContext) => GateDecision;

/**
 * An empty response to `query` with `rcode`: the same id, opcode, question (when the query has
 * exactly one), RD and CD (RFC 4035 §3.2.2); QR set, every section empty. It carries an OPT
 * record when the query had one (RFC 6891 §7), with version 0, the query's DO bit (RFC 3225 §3)
 * and a payload size of {@link EDNS_UDP_PAYLOAD_OCTETS}. An extended rcode such as BADVERS can
 * only travel in an OPT, so for one of those an OPT is added even when the query had none.
 * Handlers use it as the base of their own responses too.
 */
export function respondError(query: Message, rcode: Rcode): Message {
  const value = rcodeToCode(rcode);
  const flags = responseFlags({
    opcode: query.flags.opcode,
    rd: query.flags.rd,
    cd: query.flags.cd,
  });
  const response: Message = {
    id: query.id,
    flags,
    rcode,
    questions: query.questions.length === 1 ? [...query.questions] : [],
    answers: [],
    authorities: [],
    additionals: [],
  };
  if (query.edns !== undefined || value > 0xf) {
    response.edns = {
      udpPayloadSize: EDNS_UDP_PAYLOAD_OCTETS,
      extendedRcode: value >>> 4,
      version: 0,
      dnssecOk: query.edns?.dnssecOk ?? false,
      options: [],
    };
  }
  return response;
}

/**
 * A header-only response to the query whose bytes start with a header: the id, opcode, RD and
 * CD come from that header, every count is 0. This is the FORMERR for bytes that do not decode
 * (RFC 1035 §4.1.1 allows no question when it could not be parsed).
 */
function headerOnlyResponse(
  bytes: Uint8Array,
  rcode: 'FORMERR' | 'SERVFAIL' | 'REFUSED',
): Uint8Array {
  const out = new Uint8Array(HEADER_OCTETS);
  out[0] = bytes[0] as number;
  out[1] = bytes[1] as number;
  const word = ((bytes[2] as number) << 8) | (bytes[3] as number);
  const flags = FLAG_QR | (word & (OPCODE_MASK | FLAG_RD | FLAG_CD)) | rcodeToCode(rcode);
  out[2] = flags >>> 8;
  out[3] = flags & 0xff;
  return out;
}

/**
 * What to do with the bytes of one query. A reply from the answer cache carries its DoH
 * `maxAge` instead of the messages, and already fits the UDP limit it was asked for. A reply
 * to a query the gate refused carries `limited`: the seconds the client should wait.
 */
export type Answer =
  | { kind: 'drop'; reason: 'short' | 'response' }
  | {
      kind: 'reply';
      wire: Uint8Array;
      response?: Message;
      query?: Message;
      maxAge?: number;
      limited?: { readonly retryAfter: number };
    };

/** What to do with the bytes of one query on a stream transport: an {@link Answer}, or a transfer's messages. */
export type StreamAnswer =
  Answer | { kind: 'stream'; messages: AsyncIterable<Uint8Array>; query: Message };

/** What {@link answerQuery} needs besides the bytes. */
export interface AnswerOptions {
  readonly handler: QueryHandler;
  readonly context: QueryContext;
  readonly log: Logger;
  /** Answers to reuse (see the module comment); none by default. */
  readonly cache?: AnswerCache | undefined;
  /** Per-client limits asked before anything else (see the module comment); none by default. */
  readonly gate?: QueryGate | undefined;
  /**
   * For UDP: the server's largest response. A response larger than the sender accepts
   * ({@link udpResponseLimit}) is replaced by its truncated form ({@link truncateForUdp}).
   */
  readonly udpLimit?: number;
  /** Where each query is recorded (see the module comment); none by default. */
  readonly queryLog?: QueryLog | undefined;
  /** The TSIG keys queries may be signed with (see the module comment); none by default. */
  readonly tsig?: TsigServerOptions | undefined;
}

/**
 * The size a UDP response to `query` may have: the client's EDNS payload size (512 without EDNS,
 * RFC 1035 §4.2.1; never below 512, RFC 6891 §6.2.5), capped by the server's `maxPayload`.
 */
export function udpResponseLimit(query: Message | undefined, maxPayload: number): number {
  const offered = query?.edns?.udpPayloadSize ?? MIN_UDP_PAYLOAD_OCTETS;
  return Math.min(Math.max(MIN_UDP_PAYLOAD_OCTETS, offered), maxPayload);
}

/**
 * The `max-age` of a response for HTTP caches (RFC 8484 §5.1): the smallest TTL in the answer
 * section; for a negative answer min(SOA TTL, SOA MINIMUM) of the SOA in the authority section
 * (RFC 2308 §5); for a referral the smallest TTL of its records. Error responses (other than
 * NXDOMAIN), truncated ones and responses without records get 0.
 *
 * Example: answers at TTL 3600 and 300 → 300; NXDOMAIN with SOA TTL 3600, MINIMUM 300 → 300.
 */
export function dohCacheMaxAge(response: Message): number {
  if (response.rcode !== 'NOERROR' && response.rcode !== 'NXDOMAIN') return 0;
  if (response.flags.tc) return 0;
  const smallest = (records: Message['answers']): number =>
    records.reduce((min, rr) => Math.min(min, rr.ttl), Number.POSITIVE_INFINITY);
  if (response.answers.length > 0) return smallest(response.answers);
  const soa = response.authorities.find((rr) => rr.type === 'SOA');
  if (soa !== undefined && soa.type === 'SOA') return Math.min(soa.ttl, soa.data.minimum);
  const rest = [...response.authorities, ...response.additionals];
  return rest.length > 0 ? smallest(rest) : 0;
}

/**
 * Runs the steps of the module comment over one query's bytes. A `reply` carries the encoded
 * response (`wire`), and the decoded query and response message when there are any (UDP uses
 * them to truncate, DoH to set the cache lifetime). Never throws.
 */
export async function answerQuery(bytes: Uint8Array, options: AnswerOptions): Promise<Answer> {
  return answerQueryNow(bytes, options);
}

/**
 * {@link answerQuery} without the promise when the handler answers synchronously: the UDP
 * listener takes this path so that a query is answered in the event turn it arrived in.
 */
export function answerQueryNow(
  bytes: Uint8Array,
  options: AnswerOptions,
  transfer?: TransferHandler,
): Answer | Promise<Answer> {
  // Over UDP a transfer handler answers IXFR alone, with one message (RFC 1995 §2): an answer
  // that is a stream is turned into SERVFAIL in `transferAnswer`.
  return answerBytes(bytes, options, transfer) as Answer | Promise<Answer>;
}

/**
 * {@link answerQuery} for a listener that can send a transfer's many messages (TCP): AXFR and
 * IXFR go to `transfer` (see the module comment) and may be answered with a stream.
 */
export async function answerQueryOrTransfer(
  bytes: Uint8Array,
  options: AnswerOptions,
  transfer: TransferHandler | undefined,
): Promise<StreamAnswer> {
  return answerBytes(bytes, options, transfer);
}

function answerBytes(
  bytes: Uint8Array,
  options: AnswerOptions,
  transfer: TransferHandler | undefined,
): StreamAnswer | Promise<StreamAnswer> {
  if (bytes.length < HEADER_OCTETS) return { kind: 'drop', reason: 'short' };
  if (((bytes[2] as number) & (FLAG_QR >>> 8)) !== 0) return { kind: 'drop', reason: 'response' };
  const decision = options.gate?.(bytes, options.context);
  if (decision?.kind === 'refuse') {
    const refused = refusedAnswer(bytes, decision, options);
    if (refused !== undefined) return refused;
  }
  const { cache } = options;
  let generation = 0;
  if (cache !== undefined) {
    const hit = cache.get(bytes, options.udpLimit !== undefined);
    if (hit !== undefined) {
      options.queryLog?.record({
        name: hit.name,
        type: hit.type,
        transport: options.context.transport,
        rcode: hit.rcode,
        cached: true,
        peer: options.context.remoteAddress,
      });
      return { kind: 'reply', wire: hit.wire, maxAge: hit.maxAge };
    }
    generation = cache.generation();
  }
  let query: Message;
  try {
    query = decodeMessage(bytes);
  } catch {
    return { kind: 'reply', wire: headerOnlyResponse(bytes, 'FORMERR') };
  }
  let signer: Signer | undefined;
  if (query.additionals.some((rr) => rr.type === TSIG_TYPE)) {
    const verified = verifyTsig(bytes, query, options);
    if (verified.kind === 'refused') return verified.answer;
    ({ query, signer } = verified);
    options = { ...options, context: { ...options.context, tsig: verified.tsig } };
  }
  const refusal = checkQuery(query);
  if (refusal !== undefined) {
    recordQuery(options, query, refusal);
    return reply(bytes, query, respondError(query, refusal), options.log, signer);
  }
  const type = query.questions[0]?.type;
  const streams = options.udpLimit === undefined;
  if (transfer !== undefined && (type === 'IXFR' || (type === 'AXFR' && streams))) {
    return transferAnswer(bytes, query, options, transfer, signer);
  }
  let pending: Message | Promise<Message>;
  try {
    pending = options.handler(query, options.context);
  } catch (error) {
    return handlerFailed(bytes, query, options, error, signer);
  }
  if (pending instanceof Promise) {
    return pending.then(
      (response) => encodeResponse(bytes, query, response, options, generation, signer),
      (error: unknown) => handlerFailed(bytes, query, options, error, signer),
    );
  }
  return encodeResponse(bytes, query, pending, options, generation, signer);
}

/** The type mnemonic the codec gives a TSIG record (it has no place in the record model). */
const TSIG_TYPE = `TYPE${RR_TYPE_TSIG}`;

/**
 * Signs the encoded messages answering one verified query: the first over the query's MAC, each
 * later one over the MAC of the one before (RFC 8945 §5.3.1). `room` is the octets its TSIG
 * record takes, which a UDP response must leave free.
 */
interface Signer {
  sign(wire: Uint8Array): Uint8Array;
  readonly room: number;
}

function createSigner(key: TsigKey, requestMac: Uint8Array, now: Clock): Signer {
  let prior: Uint8Array | undefined;
  return {
    room: tsigRecordOctets(key),
    sign(wire) {
      const signed = signMessage(
        wire,
        key,
        prior === undefined ? { now: now(), requestMac } : { now: now(), priorMac: prior },
      );
      prior = signed.mac;
      return signed.wire;
    },
  };
}

/**
 * The TSIG step of the module comment: the query without its TSIG and the signer of its answer,
 * or the answer that refuses it.
 */
function verifyTsig(
  bytes: Uint8Array,
  query: Message,
  options: AnswerOptions,
):
  | { kind: 'verified'; query: Message; signer: Signer; tsig: VerifiedTsig }
  | { kind: 'refused'; answer: Answer } {
  const tsig = options.tsig ?? NO_TSIG_KEYS;
  const now = tsig.now();
  const verification = verifyRequest(bytes, tsig.keys, now);
  const refused = (response: Message, sign: (wire: Uint8Array) => Uint8Array): Answer => {
    recordQuery(options, query, response.rcode);
    try {
      return { kind: 'reply', wire: sign(encodeMessage(response)), response, query };
    } catch (error) {
      // An error response built from a decoded query always encodes and signs within 64 KiB;
      // reaching this is our fault, and the client is still refused.
      options.log.error('tsig-refusal-not-encoded', { error });
      return { kind: 'reply', wire: headerOnlyResponse(bytes, 'REFUSED') };
    }
  };
  // The query as its handler would have seen it: the TSIG record is not part of the model.
  const bare: Message = {
    ...query,
    additionals: query.additionals.filter((rr) => rr.type !== TSIG_TYPE),
  };
  switch (verification.kind) {
    // 'unsigned': the codec decoded a TSIG record that the framing walk does not find; never
    // expected, and answered as a TSIG out of place.
    case 'unsigned':
    case 'malformed':
      tsig.onRefused?.('FORMERR');
      options.log.debug('tsig-malformed', {
        reason: verification.kind === 'malformed' ? verification.reason : 'not found',
      });
      return { kind: 'refused', answer: refused(respondError(bare, 'FORMERR'), (w) => w) };
    case 'failed': {
      tsig.onRefused?.(verification.error);
      // Design §10: the key and the error, never the client's address or the query name.
      options.log.info('tsig-refused', {
        key: verification.tsig.keyName,
        error: verification.error,
      });
      const response = respondError(bare, 'NOTAUTH');
      const { key, error } = verification;
      if (key === undefined || error === 'BADKEY' || error === 'BADSIG') {
        const unsignedError = error === 'BADKEY' ? 'BADKEY' : 'BADSIG';
        return {
          kind: 'refused',
          answer: refused(response, (w) => appendUnsignedTsig(w, verification.tsig, unsignedError)),
        };
      }
      // RFC 8945 §5.2.3: a BADTIME answer is signed, its time signed the request's and its
      // other data the server's time, so that the client can tell how far apart the clocks are.
      const sign = (wire: Uint8Array): Uint8Array =>
        signMessage(wire, key, {
          now,
          requestMac: verification.tsig.mac,
          error,
          ...(error === 'BADTIME'
            ? { timeSigned: verification.tsig.timeSigned, otherData: badTimeOtherData(now) }
            : {}),
        }).wire;
      return { kind: 'refused', answer: refused(response, sign) };
    }
    case 'verified':
      return {
        kind: 'verified',
        query: bare,
        signer: createSigner(verification.key, verification.tsig.mac, tsig.now),
        tsig: { key: verification.key, mac: verification.tsig.mac },
      };
  }
}

/**
 * Step 7 for AXFR and IXFR: the transfer handler's messages, encoded (and signed) one by one; over
 * UDP its one message.
 */
function transferAnswer(
  bytes: Uint8Array,
  query: Message,
  options: AnswerOptions,
  transfer: TransferHandler,
  signer: Signer | undefined,
): StreamAnswer {
  let result: TransferResponse;
  try {
    result = transfer(query, options.context);
  } catch (error) {
    return handlerFailed(bytes, query, options, error, signer);
  }
  if (!(Symbol.asyncIterator in result)) {
    if (options.udpLimit !== undefined) {
      return encodeResponse(bytes, query, result, options, 0, signer);
    }
    recordQuery(options, query, result.rcode);
    return reply(bytes, query, result, options.log, signer);
  }
  if (options.udpLimit !== undefined) {
    return handlerFailed(bytes, query, options, new TypeError('a stream over UDP'), signer);
  }
  recordQuery(options, query, 'NOERROR');
  const messages = result;
  async function* encoded(): AsyncGenerator<Uint8Array> {
    for await (const message of messages) {
      try {
        const wire = encodeMessage(message);
        yield signer === undefined ? wire : signer.sign(wire);
      } catch (error) {
        // A transfer cannot be answered with SERVFAIL once it has begun: it ends here, and the
        // listener closes the connection, which the client sees as a failed transfer.
        logHandlerFault(options, query, 'transfer message does not encode', error);
        throw error;
      }
    }
  }
  return { kind: 'stream', messages: encoded(), query };
}

function handlerFailed(
  bytes: Uint8Array,
  query: Message,
  options: AnswerOptions,
  error: unknown,
  signer: Signer | undefined,
): Answer {
  logHandlerFault(options, query, 'handler failed', error);
  recordQuery(options, query, 'SERVFAIL');
  return reply(bytes, query, respondError(query, 'SERVFAIL'), options.log, signer);
}

function encodeResponse(
  bytes: Uint8Array,
  query: Message,
  response: Message,
  options: AnswerOptions,
  generation: number,
  signer: Signer | undefined,
): Answer {
  let wire: Uint8Array;
  try {
    wire = encodeMessage(response);
    if (options.udpLimit !== undefined) {
      // RFC 8945 §5.3: a signed answer that does not fit is truncated, then signed.
      const limit = udpResponseLimit(query, options.udpLimit) - (signer?.room ?? 0);
      if (wire.length > limit) wire = truncateForUdp(response, limit, wire);
    }
    if (signer !== undefined) wire = signer.sign(wire);
  } catch (error) {
    logHandlerFault(options, query, 'handler response does not encode', error);
    recordQuery(options, query, 'SERVFAIL');
    return reply(bytes, query, respondError(query, 'SERVFAIL'), options.log, signer);
  }
  recordQuery(options, query, response.rcode);
  const type = query.questions[0]?.type;
  if (type === 'AXFR' || type === 'IXFR' || signer !== undefined) {
    return { kind: 'reply', wire, response, query };
  }
  options.cache?.set(
    bytes,
    options.udpLimit !== undefined,
    response,
    wire,
    generation,
    dohCacheMaxAge(response),
  );
  return { kind: 'reply', wire, response, query };
}

/** Records `query`, answered with `rcode`, in the query log (when there is one). */
function recordQuery(options: AnswerOptions, query: Message, rcode: Rcode): void {
  const queryLog = options.queryLog;
  if (queryLog === undefined || query.questions.length !== 1) return;
  const question = query.questions[0] as Message['questions'][number];
  queryLog.record({
    name: canonicalName(question.name),
    type: question.type,
    transport: options.context.transport,
    rcode,
    peer: options.context.remoteAddress,
  });
}

/**
 * The answer to a query the gate refused: the gate's response, encoded, marked `limited`. A query
 * that does not decode gets undefined, and goes on to its FORMERR (no work is done for it).
 */
function refusedAnswer(
  bytes: Uint8Array,
  decision: Extract<GateDecision, { kind: 'refuse' }>,
  options: AnswerOptions,
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
    recordQuery(options, query, response.rcode);
    return { kind: 'reply', wire: encodeMessage(response), response, query, limited };
  } catch (error) {
    // The gate's response is built from a decoded query and carries no records; reaching this
    // is a fault of the gate, and the client is still refused.
    options.log.error('refusal-not-encoded', { error });
    return { kind: 'reply', wire: headerOnlyResponse(bytes, 'REFUSED'), limited };
  }
}

/** Steps 4–6: the rcode that turns a decoded query away, or undefined when it goes to the handler. */
function checkQuery(query: Message): Rcode | undefined {
  if (query.edns !== undefined && query.edns.version > 0) return 'BADVERS';
  if (query.flags.opcode !== OPCODE_QUERY) return 'NOTIMP';
  if (query.questions.length !== 1) return 'FORMERR';
  return undefined;
}

function reply(
  bytes: Uint8Array,
  query: Message,
  response: Message,
  log: Logger,
  signer?: Signer,
): Answer {
  try {
    // An error response carries no records, so it always fits 512 octets, signed too.
    const wire = encodeMessage(response);
    return {
      kind: 'reply',
      wire: signer === undefined ? wire : signer.sign(wire),
      response,
      query,
    };
  } catch (error) {
    // An error response built from a decoded query always encodes; reaching this is our fault.
    log.error('error-response-not-encoded', { error });
    return { kind: 'reply', wire: headerOnlyResponse(bytes, 'SERVFAIL') };
  }
}

/** Design §10: the query name may be logged, but never with the client address. */
function logHandlerFault(
  options: AnswerOptions,
  query: Message,
  event: string,
  error: unknown,
): void {
  const question = query.questions[0];
  options.log.error(event, {
    transport: options.context.transport,
    name: question?.name,
    type: question?.type,
    error,
  });
}

/**
 * The bytes of `response` for a UDP client that accepts `limit` octets. When the whole response
 * does not fit, the client gets the header with TC set, the question and the OPT record only
 * (RFC 2181 §9: a partial RRset is never sent; RFC 6891 §7: the OPT stays), and retries over TCP.
 * Should even that not fit (OPT options larger than the limit), the options are left out.
 * `encoded`, when given, is `response` already encoded, so it is not encoded again.
 *
 * Worked example: a 1,800-octet answer to a query with EDNS payload 1232 becomes a 12-octet
 * header + question + 11-octet OPT, with TC=1 and no records.
 */
export function truncateForUdp(response: Message, limit: number, encoded?: Uint8Array): Uint8Array {
  const full = encoded ?? encodeMessage(response);
  if (full.length <= limit) return full;
  const truncated: Message = {
    ...response,
    flags: { ...response.flags, tc: true },
    answers: [],
    authorities: [],
    additionals: [],
  };
  const wire = encodeMessage(truncated);
  if (wire.length <= limit || truncated.edns === undefined) return wire;
  return encodeMessage({ ...truncated, edns: { ...truncated.edns, options: [] } });
}
