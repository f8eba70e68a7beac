import {
  EDE_PROHIBITED,
  createClientExemptions,
  createClientRateLimiter,
  createResponseRateLimiter,
  edeOption,
  respondError,
  systemClock,
  type Clock,
  type QueryGate,
  type ResponseRateLimiter,
  type RrlSettings,
} from '@mimi-discovery/common';

/**
 * The per-client limits of a DP's (and the root's) DNS front ends, from `limits.rrl` and
 * `limits.dohClients` of its config:
 *
 * - **UDP**: Response Rate Limiting (`rrl.ts` of `@mimi-discovery/common`): past a rate, a
 *   client's stream of the same answers (or of denials under one zone) is dropped, every
 *   `slip`-th response sent truncated so that a real client retries over TCP. This is what keeps
 *   a DP from reflecting floods at a spoofed victim, and what slows a client walking random
 *   numbers of a zone over UDP.
 * - **TCP**: no per-response limit (as in BIND: a connection proves the address); the
 *   connection limits of `limits.tcp` bound what one client holds.
 * - **DoH**: a token bucket of queries per client; past it the client gets 429 with
 *   `Retry-After`, before any lookup. The defaults (1,000 a second, 10,000 at once) leave a
 *   resolver's contact sync of 1,000 CSIs (two or three queries each) untouched.
 *
 * A client is an IPv4 address or an IPv6 /64 (`clientKeyOf`); `exempt` ranges (the operator's
 * own resolvers, monitoring) are never limited.
 */

/** Default DoH queries per second of one client: a busy resolver's steady rate to one DP. */
export const DEFAULT_DOH_QUERIES_PER_SECOND = 1_000;
/** Default DoH queries one client may send at once: several contact syncs of 1,000 CSIs. */
export const DEFAULT_DOH_QUERY_BURST = 10_000;

/** `limits.rrl` of a DP config: {@link RrlSettings} and the exempt ranges. */
export interface DpRrlSettings extends RrlSettings {
  readonly exempt: readonly string[];
}

/** `limits.dohClients` of a DP config. */
export interface DpDohClientSettings {
  readonly queriesPerSecond: number;
  readonly queryBurst: number;
  readonly maxClients: number;
  readonly exempt: readonly string[];
}

/** Counts of a DP's limits since it started, and their tables now. */
export interface DpLimitStats {
  /** RRL: responses sent truncated and dropped, streams tracked; undefined when RRL is off. */
  readonly rrl:
    { readonly slipped: number; readonly dropped: number; readonly entries: number } | undefined;
  /** DoH: queries refused with 429, clients tracked. */
  readonly doh: { readonly limited: number; readonly clients: number };
}

/** A DP's limits, as its DNS server takes them. */
export interface DpLimits {
  /** RRL of the UDP listener; undefined when every rate of `limits.rrl` is 0. */
  readonly rrl: ResponseRateLimiter | undefined;
  /** The gate of the listeners: the DoH query rate (UDP and TCP pass). */
  readonly gate: QueryGate;
  stats(): DpLimitStats;
}

/**
 * The limits of `settings` (a DP config's `limits`, defaults filled in), over the server's
 * clock. Throws a `RangeError` for values the config schema lets through only when built in code.
 */
export function createDpLimits(
  settings: { readonly rrl: DpRrlSettings; readonly dohClients: DpDohClientSettings },
  components: { readonly now?: Clock } = {},
): DpLimits {
  const now = components.now ?? systemClock;
  const { rrl: rrlSettings, dohClients } = settings;
  const rrlOn =
    rrlSettings.responsesPerSecond > 0 ||
    rrlSettings.denialsPerSecond > 0 ||
    rrlSettings.errorsPerSecond > 0;
  const rrl = rrlOn
    ? createResponseRateLimiter(rrlSettings, {
        now,
        exempt: createClientExemptions(rrlSettings.exempt),
      })
    : undefined;
  const doh = createClientRateLimiter({
    rate: { perSecond: dohClients.queriesPerSecond, burst: dohClients.queryBurst },
    maxClients: dohClients.maxClients,
    exempt: createClientExemptions(dohClients.exempt),
    now,
  });
  let limited = 0;
  const gate: QueryGate = (_bytes, context) => {
    if (context.transport !== 'doh') return PASS;
    const decision = doh.take(context.remoteAddress);
    if (decision.kind === 'taken') return PASS;
    limited++;
    const text = `rate limited (queries); retry in ${decision.retryAfter} s`;
    return {
      kind: 'refuse',
      retryAfter: decision.retryAfter,
      // DoH answers 429; the DNS form is what the gate would say over another transport.
      respond: (query) => {
        const refused = respondError(query, 'REFUSED');
        return refused.edns === undefined
          ? refused
          : { ...refused, edns: { ...refused.edns, options: [edeOption(EDE_PROHIBITED, text)] } };
      },
    };
  };
  return {
    rrl,
    gate,
    stats: () => ({
      rrl: rrl?.stats(),
      doh: { limited, clients: doh.clients },
    }),
  };
}

const PASS = Object.freeze({ kind: 'pass' as const });
