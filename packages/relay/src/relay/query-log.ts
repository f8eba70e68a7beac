import {
  openLineLog,
  type LineLog,
  type LineLogSettings,
  type QueryLogComponents,
} from '@mimi-discovery/common';

/**
 * The relay's query log (design §10): off unless configured, one JSON object per request,
 * appended to a file (mode 0600: it records who used the relay, and when):
 *
 * ```
 * {"t":"2026-01-01T12:00:00.000Z","client":"192.0.2.7","method":"POST","route":"/ohttp/resolver","in":6212,"out":18933,"status":200}
 * {"t":"2026-01-01T12:00:00.350Z","client":"192.0.2.7","method":"POST","route":"/proxy","target":"resolver.example:443","in":310,"out":0,"status":403}
 * ```
 *
 * `t` (ISO 8601, UTC, milliseconds), `client` (the address the request came from), `method`,
 * `route` (`/ohttp/<gateway>`, `/proxy`, or `other` for a path the relay does not serve),
 * `target` (an ODoH proxy request's `host:port`), `in` and `out` (octets of the request body
 * read and of the response body sent), `status` (the HTTP status the client got). Never a body
 * or a header: what the relay forwards is encrypted for the gateway, and the relay keeps none
 * of it. The relay knows the client and never a CSI (R6), so a line may hold the address.
 *
 * Written by the servers' DNS query log's writer (`openLineLog` of `query-log.ts` in
 * `@mimi-discovery/common`) with this line format: answering never waits for the log; at most
 * `bufferBytes` of lines wait for the disk and the rest are dropped and counted; a failed write
 * drops its lines, is logged once, and the next is tried `QUERY_LOG_RETRY_MS` later.
 */

/** One request as the relay's query log records it. */
export interface RelayLogEntry {
  readonly client: string;
  readonly method: string;
  readonly route: string;
  /** `host:port` of an ODoH proxy request. */
  readonly target?: string | undefined;
  /** Octets of request body read. */
  readonly octetsIn: number;
  /** Octets of response body sent. */
  readonly octetsOut: number;
  readonly status: number;
}

/** Where the log goes, and how much may wait for the disk (default `QUERY_LOG_BUFFER_OCTETS`). */
export type RelayQueryLogSettings = LineLogSettings;

/** What the log uses besides its settings: the clock, the logger, the wait after a failure. */
export type RelayQueryLogComponents = QueryLogComponents;

/** An open relay query log. */
export type RelayQueryLog = LineLog<RelayLogEntry>;

/** The line of one entry, with its newline; keys in the order of the module comment. */
export function relayLogLine(entry: RelayLogEntry, time: number): string {
  return `${JSON.stringify({
    t: new Date(time).toISOString(),
    client: entry.client,
    method: entry.method,
    route: entry.route,
    ...(entry.target === undefined ? {} : { target: entry.target }),
    in: entry.octetsIn,
    out: entry.octetsOut,
    status: entry.status,
  })}\n`;
}

/** Opens the log at `settings.path`; the file is opened (created) at once, in the background. */
export function openRelayQueryLog(
  settings: RelayQueryLogSettings,
  components: RelayQueryLogComponents = {},
): RelayQueryLog {
  return openLineLog(settings, relayLogLine, components);
}
