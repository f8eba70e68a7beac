import { lookup } from 'node:dns/promises';
import { connect, isIP } from 'node:net';
import {
  buildQuery,
  canonicalName,
  decodeMessage,
  encodeMessage,
  isSubdomain,
  MimiError,
  namesEqual,
  type Message,
  type RecordOf,
  type ResourceRecord,
} from '@mimi-discovery/common';
import type { DelegationSpec } from './delegation.js';
import type { FetchedRRset, ServerAnswers } from './cds-check.js';

/**
 * Asking a child's nameservers for its DNSKEY, CDS and CDNSKEY (RFC 7344 §6.1: every one of
 * them), over DNS on TCP (RFC 7766): no truncation, and no answer forged by an off-path sender
 * of datagrams. Integrity comes from DNSSEC (`cds-check.ts`), not from the transport; the
 * questions name a zone, never a CSI, so plain DNS reveals nothing about senders.
 *
 * Every exchange is bounded: one TCP message (at most 65,535 octets, RFC 1035 §4.2.2) per
 * question, within the query timeout and what is left of the round; at most
 * {@link MAX_CDS_ANSWER_RECORDS} records in an answer section; at most
 * {@link MAX_CDS_SERVERS_PER_CHILD} addresses per child.
 */

/** Most records in the answer section of one response (the RRset and its RRSIGs). */
export const MAX_CDS_ANSWER_RECORDS = 64;
/**
 * Most server addresses asked per child: the 13 nameservers a delegation may list, each with an
 * IPv4 and an IPv6 address. A child with more is refused rather than partly asked, since RFC
 * 7344 §6.1 wants every nameserver to agree.
 */
export const MAX_CDS_SERVERS_PER_CHILD = 26;

/** One address of a child's nameserver. */
export interface CdsServerAddress {
  /** The nameserver's name (the NS target). */
  name: string;
  address: string;
  port: number;
}

/** The codes of a {@link CdsFetchError}. */
export type CdsFetchErrorCode = 'ERR_CDS_UNREACHABLE' | 'ERR_CDS_TOO_LARGE';

/** Why a child's servers could not be asked or did not answer as they must. */
export class CdsFetchError extends MimiError<CdsFetchErrorCode> {}

/** Resolves a host name to addresses (nameservers outside the parent zone have no glue). */
export type ResolveHost = (host: string) => Promise<string[]>;

/** The system's resolver, every address of the name. */
export const systemResolveHost: ResolveHost = async (host) =>
  (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/** What {@link childServers} and {@link fetchChildAnswers} need. */
export interface CdsFetchOptions {
  /** The port of every child nameserver (DNS over TCP). */
  port: number;
  /** Per question. */
  timeoutMs: number;
  /** Absolute deadline (ms on `performance.now()`) after which nothing more is asked. */
  deadline: number;
  resolveHost: ResolveHost;
  /** Aborting it (the poller stopping) ends every exchange at once. */
  signal?: AbortSignal;
}

/**
 * Every address of every nameserver of the delegation: the glue for names inside the parent
 * zone, the system resolver's answer for the others (bounded by the timeout).
 */
export async function childServers(
  parent: string,
  delegation: DelegationSpec,
  options: CdsFetchOptions,
): Promise<CdsServerAddress[]> {
  const out: CdsServerAddress[] = [];
  for (const ns of delegation.nameservers) {
    let addresses = ns.addresses;
    if (addresses.length === 0 && !isSubdomain(ns.name, parent)) {
      addresses = await withTimeout(
        options.resolveHost(ns.name),
        remaining(options),
        `resolving ${ns.name}`,
      ).catch((error: unknown) => {
        throw new CdsFetchError(
          'ERR_CDS_UNREACHABLE',
          `no address for nameserver ${ns.name}: ${error instanceof Error ? error.message : String(error)}`,
        );
      });
    }
    const usable = addresses.filter((a) => isIP(a) !== 0);
    if (usable.length === 0) {
      throw new CdsFetchError('ERR_CDS_UNREACHABLE', `no address for nameserver ${ns.name}`);
    }
    for (const address of usable) out.push({ name: ns.name, address, port: options.port });
  }
  if (out.length > MAX_CDS_SERVERS_PER_CHILD) {
    throw new CdsFetchError(
      'ERR_CDS_TOO_LARGE',
      `${delegation.zone} has ${out.length} nameserver addresses (at most ${MAX_CDS_SERVERS_PER_CHILD})`,
    );
  }
  return out;
}

/**
 * Asks every server for DNSKEY, CDS and CDNSKEY at `zone` with DO set, all at once; rejects with
 * a {@link CdsFetchError} as soon as one server fails, since RFC 7344 §6.1 needs them all.
 */
export async function fetchChildAnswers(
  zone: string,
  servers: readonly CdsServerAddress[],
  options: CdsFetchOptions,
): Promise<ServerAnswers[]> {
  // The first failure ends the other exchanges too: their answers could no longer be used.
  const all = new AbortController();
  const onAbort = (): void => all.abort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const each = { ...options, signal: all.signal };
  try {
    return await Promise.all(
      servers.map(async (server): Promise<ServerAnswers> => {
        const [dnskey, cds, cdnskey] = await Promise.all([
          askRRset(zone, 'DNSKEY', server, each),
          askRRset(zone, 'CDS', server, each),
          askRRset(zone, 'CDNSKEY', server, each),
        ]);
        return { server: where(server), dnskey, cds, cdnskey };
      }),
    );
  } catch (error) {
    all.abort();
    throw error;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}

function where(server: CdsServerAddress): string {
  return isIP(server.address) === 6
    ? `[${server.address}]:${server.port}`
    : `${server.address}:${server.port}`;
}

function remaining(options: CdsFetchOptions): number {
  return Math.min(options.timeoutMs, Math.floor(options.deadline - performance.now()));
}

async function askRRset<T extends 'DNSKEY' | 'CDS' | 'CDNSKEY'>(
  zone: string,
  type: T,
  server: CdsServerAddress,
  options: CdsFetchOptions,
): Promise<FetchedRRset<T>> {
  const timeoutMs = remaining(options);
  const at = where(server);
  if (timeoutMs <= 0) throw new CdsFetchError('ERR_CDS_UNREACHABLE', `no time left to ask ${at}`);
  let response: Message;
  try {
    response = await askTcp(
      server,
      buildQuery(zone, type, { dnssecOk: true }),
      timeoutMs,
      options.signal,
    );
  } catch (error) {
    throw new CdsFetchError(
      'ERR_CDS_UNREACHABLE',
      `${type} from ${at}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  // Only an authoritative answer counts: the child's own servers speak for its apex.
  if (response.rcode !== 'NOERROR' || !response.flags.aa) {
    throw new CdsFetchError(
      'ERR_CDS_UNREACHABLE',
      `${type} from ${at}: ${response.rcode}${response.flags.aa ? '' : ' without AA'}`,
    );
  }
  if (response.answers.length > MAX_CDS_ANSWER_RECORDS) {
    throw new CdsFetchError(
      'ERR_CDS_TOO_LARGE',
      `${type} from ${at}: ${response.answers.length} records (at most ${MAX_CDS_ANSWER_RECORDS})`,
    );
  }
  return pickRRset(zone, type, response.answers);
}

/** Octets of the 2-octet length prefix of a DNS message over TCP (RFC 1035 §4.2.2). */
const LENGTH_OCTETS = 2;

/**
 * One query over a new TCP connection (RFC 7766), the response read as one length-prefixed
 * message (at most 65,535 octets, so what a child can make the parent hold is bounded), within
 * `timeoutMs`, ended at once when `signal` aborts. A response that does not answer the query
 * (RFC 5452 §9.1: QR, id, question) fails.
 */
function askTcp(
  server: CdsServerAddress,
  query: Message,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<Message> {
  const wire = encodeMessage(query);
  return new Promise<Message>((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(new Error('stopped'));
      return;
    }
    const socket = connect({ host: server.address, port: server.port, noDelay: true });
    let received: Buffer = Buffer.alloc(0);
    let settled = false;
    const finish = (result: Message | Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    const onAbort = (): void => finish(new Error('stopped'));
    signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(
      () => finish(new Error(`no response within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.on('connect', () => {
      const frame = Buffer.allocUnsafe(LENGTH_OCTETS + wire.length);
      frame.writeUInt16BE(wire.length, 0);
      frame.set(wire, LENGTH_OCTETS);
      socket.write(frame);
    });
    socket.on('data', (chunk: Buffer) => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      if (received.length < LENGTH_OCTETS) return;
      const length = received.readUInt16BE(0);
      if (received.length < LENGTH_OCTETS + length) return;
      let response: Message;
      try {
        response = decodeMessage(received.subarray(LENGTH_OCTETS, LENGTH_OCTETS + length));
      } catch (error) {
        finish(
          new Error(
            `response does not decode: ${error instanceof Error ? error.message : String(error)}`,
          ),
        );
        return;
      }
      finish(
        answersQuery(query, response) ? response : new Error('response does not answer the query'),
      );
    });
    socket.on('error', (error) => finish(error));
    socket.on('close', () => finish(new Error('connection closed before the response')));
  });
}

/** RFC 5452 §9.1: QR set, the same id, the same one question. */
function answersQuery(query: Message, response: Message): boolean {
  const q = query.questions[0];
  const r = response.questions[0];
  return (
    response.flags.qr &&
    response.id === query.id &&
    response.questions.length === 1 &&
    q !== undefined &&
    r !== undefined &&
    namesEqual(q.name, r.name) &&
    q.type === r.type &&
    q.class === r.class
  );
}

/** The RRset `zone`/`type` of an answer section and the RRSIGs that cover it; the rest ignored. */
function pickRRset<T extends 'DNSKEY' | 'CDS' | 'CDNSKEY'>(
  zone: string,
  type: T,
  answers: readonly ResourceRecord[],
): FetchedRRset<T> {
  const owner = canonicalName(zone);
  const records: RecordOf<T>[] = [];
  const rrsigs: RecordOf<'RRSIG'>[] = [];
  for (const rr of answers) {
    if (!namesEqual(rr.name, owner) || rr.class !== 'IN') continue;
    if (rr.type === type) records.push(rr as RecordOf<T>);
    else if (rr.type === 'RRSIG' && rr.data.typeCovered === type) rrsigs.push(rr);
  }
  return { records, rrsigs };
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: no answer within ${ms} ms`)),
      Math.max(1, ms),
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
