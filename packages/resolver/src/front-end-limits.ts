import {
  DEFAULT_APEX,
  DEFAULT_LIMITED_CLIENTS,
  DEFAULT_SEEN_SECONDS,
  CsiError,
  canonicalName,
  createClientExemptions,
  createClientRateLimiter,
  createNameBudget,
  csiToName,
  systemClock,
  type Clock,
  type Csi,
  type NameCharge,
  type RateDecision,
} from '@mimi-discovery/common';

/**
 * The per-client limits of a resolver's front ends (design §7, R8: enumeration protection), one
 * set per server, shared by the JSON API and the DNS front ends (UDP, TCP, DoH), so a client has
 * one budget however it asks:
 *
 * - **new names**: a budget of names the client has not asked for in the last `seenSeconds`
 *   (`NameBudget` of `@mimi-discovery/common`), as Signal's contact discovery charges only new
 *   numbers. The JSON API charges a request its CSIs' DNS names (`csiToName` under the apex), the
 *   DNS front ends a query its name when it lies under the apex; a CSI discovered through the
 *   API is then no longer new to a DNS query from the same client, and back. A request whose new
 *   names do not fit is refused whole and charges nothing. With the defaults a client may ask for
 *   2,000 new names at once, and earns 2,000 more a day: a contact sync of 1,000 new CSIs passes,
 *   and an enumeration of 10,000 stops at the 2,000th;
 * - **queries**: a token bucket of DNS queries per client, whatever their names (cached answers
 *   included);
 * - **requests**: a token bucket of JSON API requests per client, whatever their size (a batch
 *   is one request; its CSIs are the new-names budget's).
 *
 * A client is an IPv4 address or an IPv6 /64 (`clientKeyOf`, as the connection limits count
 * them). Clients in `exempt` (CIDR ranges: trusted MSP back ends, a load balancer that does not
 * pass the client's address) are never limited. Over UDP a source address can be spoofed, so a
 * flood in a victim's name spends the victim's budget; the API and TCP and DoH prove the address.
 *
 * Worked example, the defaults: an MSP back end at 192.0.2.7 posts 1,000 new CSIs (200, 1,000
 * tokens left), the same 1,000 an hour later (200, nothing charged; the hour earned 83 tokens),
 * then 1,500 others (429 `ERR_RATE_LIMITED`, `Retry-After` 18,000: the 417 tokens missing, at
 * 2,000 a day). A DNS query from the same address for a new name gets REFUSED with EDE 18 once
 * the budget is spent.
 */

/** Default most new names one client may ask for at once. */
export const DEFAULT_NEW_NAME_BURST = 2_000;
/** Default new names a client earns per day (a spent budget is full again a day later). */
export const DEFAULT_NEW_NAMES_PER_DAY = 2_000;
/**
 * Default most names remembered per client: what a client can ask for within the seen window
 * with the defaults (a burst and a day's earnings), rounded up.
 */
export const DEFAULT_MAX_SEEN_PER_CLIENT = 4_096;
/** Default most names remembered over all clients (tens of MiB). */
export const DEFAULT_MAX_SEEN = 1_000_000;
/** Default DNS queries per second per client. */
export const DEFAULT_QUERIES_PER_SECOND = 100;
/** Default DNS queries one client may send at once: a contact sync over DNS (MAP, MAPREF). */
export const DEFAULT_QUERY_BURST = 2_000;
/** Default JSON API requests per second per client. */
export const DEFAULT_API_REQUESTS_PER_SECOND = 20;
/** Default JSON API requests one client may send at once. */
export const DEFAULT_API_REQUEST_BURST = 200;

const SECONDS_PER_DAY = 86_400;

/** The settings of a resolver's per-client limits (`limits.clients` of its config). */
export interface ClientLimitSettings {
  readonly newNameBurst: number;
  readonly newNamesPerDay: number;
  readonly seenSeconds: number;
  readonly maxSeenPerClient: number;
  readonly maxSeen: number;
  readonly queriesPerSecond: number;
  readonly queryBurst: number;
  readonly requestsPerSecond: number;
  readonly requestBurst: number;
  /** Most clients each table tracks. */
  readonly maxClients: number;
  /** CIDR ranges (or addresses) never limited. */
  readonly exempt: readonly string[];
}

/** The defaults of {@link ClientLimitSettings}. */
export const DEFAULT_CLIENT_LIMITS: ClientLimitSettings = Object.freeze({
  newNameBurst: DEFAULT_NEW_NAME_BURST,
  newNamesPerDay: DEFAULT_NEW_NAMES_PER_DAY,
  seenSeconds: DEFAULT_SEEN_SECONDS,
  maxSeenPerClient: DEFAULT_MAX_SEEN_PER_CLIENT,
  maxSeen: DEFAULT_MAX_SEEN,
  queriesPerSecond: DEFAULT_QUERIES_PER_SECOND,
  queryBurst: DEFAULT_QUERY_BURST,
  requestsPerSecond: DEFAULT_API_REQUESTS_PER_SECOND,
  requestBurst: DEFAULT_API_REQUEST_BURST,
  maxClients: DEFAULT_LIMITED_CLIENTS,
  exempt: Object.freeze([]),
});

/** A front end whose clients are limited. */
export type LimitedFrontEnd = 'udp' | 'tcp' | 'doh' | 'api';
/** Every {@link LimitedFrontEnd}, in a fixed order (metrics). */
export const LIMITED_FRONT_ENDS: readonly LimitedFrontEnd[] = Object.freeze([
  'udp',
  'tcp',
  'doh',
  'api',
]);
/** Which limit refused: the new-names budget, the DNS query rate, the API request rate. */
export type LimitKind = 'new_names' | 'queries' | 'requests';
/** Every {@link LimitKind}, in a fixed order (metrics). */
export const LIMIT_KINDS: readonly LimitKind[] = Object.freeze([
  'new_names',
  'queries',
  'requests',
]);

/** What a client was refused: which limit, and the seconds until it would pass. */
export type LimitOutcome =
  | { readonly kind: 'pass' }
  | {
      readonly kind: 'limited';
      readonly limit: LimitKind;
      readonly retryAfter: number;
      /** For `new_names`: the tokens the request needed and the client had. */
      readonly needed?: number;
      readonly available?: number;
    };

/** Counts of the limits since the server started, and the sizes of their tables now. */
export interface ClientLimitStats {
  /** Requests and queries refused, by front end and limit. */
  readonly limited: Readonly<Record<LimitedFrontEnd, Readonly<Record<LimitKind, number>>>>;
  /** Entries held: clients of each table, and names remembered (`seen`). */
  readonly entries: Readonly<Record<LimitKind | 'seen', number>>;
}

/** The limits of one resolver server (see the module comment). */
export interface ResolverClientLimits {
  readonly settings: ClientLimitSettings;
  /**
   * One DNS query from `address` over `transport`: the query rate, then, when `name` is given
   * (a name under the apex, canonical), the new-names budget.
   */
  query(address: string, transport: 'udp' | 'tcp' | 'doh', name: string | undefined): LimitOutcome;
  /** One JSON API request from `address`: the request rate. */
  request(address: string): LimitOutcome;
  /** The CSIs of one JSON API request from `address`, charged to the new-names budget. */
  chargeCsis(address: string, csis: readonly Csi[]): LimitOutcome;
  /**
   * Whether `address` is in `exempt` (never limited): a front end then need not work out what
   * it would charge (parse a batch's CSIs, name them).
   */
  isExempt(address: string): boolean;
  stats(): ClientLimitStats;
}

/** What the limits use besides their settings. */
export interface ClientLimitComponents {
  /** The namespace apex the CSIs' names are under; default `mimi.arpa`. */
  readonly apex?: string;
  /** The clock of every bucket; default `systemClock`. */
  readonly now?: Clock;
}

/**
 * Creates the limits; absent settings take {@link DEFAULT_CLIENT_LIMITS}. Throws a `RangeError`
 * for settings that do not go together (`maxSeenPerClient` below `newNameBurst`, `maxSeen` below
 * `maxSeenPerClient`, an `exempt` entry that is not a CIDR range).
 */
export function createClientLimits(
  settings: Partial<ClientLimitSettings> = {},
  components: ClientLimitComponents = {},
): ResolverClientLimits {
  const full: ClientLimitSettings = Object.freeze({ ...DEFAULT_CLIENT_LIMITS, ...settings });
  const apex = canonicalName(components.apex ?? DEFAULT_APEX);
  const now = components.now ?? systemClock;
  const exempt = createClientExemptions(full.exempt);
  const names = createNameBudget({
    rate: { perSecond: full.newNamesPerDay / SECONDS_PER_DAY, burst: full.newNameBurst },
    seenSeconds: full.seenSeconds,
    maxSeenPerClient: full.maxSeenPerClient,
    maxSeen: full.maxSeen,
    maxClients: full.maxClients,
    exempt,
    now,
  });
  const queries = createClientRateLimiter({
    rate: { perSecond: full.queriesPerSecond, burst: full.queryBurst },
    maxClients: full.maxClients,
    exempt,
    now,
  });
  const requests = createClientRateLimiter({
    rate: { perSecond: full.requestsPerSecond, burst: full.requestBurst },
    maxClients: full.maxClients,
    exempt,
    now,
  });
  const limited: Record<LimitedFrontEnd, Record<LimitKind, number>> = {
    udp: { new_names: 0, queries: 0, requests: 0 },
    tcp: { new_names: 0, queries: 0, requests: 0 },
    doh: { new_names: 0, queries: 0, requests: 0 },
    api: { new_names: 0, queries: 0, requests: 0 },
  };

  const fromRate = (
    frontEnd: LimitedFrontEnd,
    limit: LimitKind,
    decision: RateDecision,
  ): LimitOutcome => {
    if (decision.kind === 'taken') return PASS;
    limited[frontEnd][limit]++;
    return { kind: 'limited', limit, retryAfter: decision.retryAfter };
  };
  const fromCharge = (frontEnd: LimitedFrontEnd, charge: NameCharge): LimitOutcome => {
    if (charge.kind === 'taken') return PASS;
    limited[frontEnd].new_names++;
    return {
      kind: 'limited',
      limit: 'new_names',
      retryAfter: charge.retryAfter,
      needed: charge.needed,
      available: charge.available,
    };
  };

  return {
    settings: full,
    query(address, transport, name) {
      const rate = fromRate(transport, 'queries', queries.take(address));
      if (rate.kind === 'limited' || name === undefined) return rate;
      return fromCharge(transport, names.charge(address, [name]));
    },
    request: (address) => fromRate('api', 'requests', requests.take(address)),
    chargeCsis: (address, csis) => fromCharge('api', names.charge(address, namesOf(csis, apex))),
    isExempt: (address) => exempt.has(address),
    stats() {
      const budget = names.stats();
      return {
        limited: {
          udp: { ...limited.udp },
          tcp: { ...limited.tcp },
          doh: { ...limited.doh },
          api: { ...limited.api },
        },
        entries: {
          new_names: budget.clients,
          seen: budget.seen,
          queries: queries.clients,
          requests: requests.clients,
        },
      };
    },
  };
}

const PASS: LimitOutcome = Object.freeze({ kind: 'pass' });

/**
 * The DNS names of `csis` under `apex`. A CSI without one (an email domain so long that the name
 * would pass 255 octets) is left out: the resolver answers it `invalid-csi` without a lookup.
 */
function namesOf(csis: readonly Csi[], apex: string): string[] {
  const names: string[] = [];
  for (const csi of csis) {
    try {
      names.push(csiToName(csi, apex));
    } catch (error) {
      if (!(error instanceof CsiError)) throw error;
    }
  }
  return names;
}
