import {
  canonicalName,
  isSubdomain,
  record,
  systemClock,
  type Clock,
  type DsData,
  type Logger,
} from '@mimi-discovery/common';
import type { DiscoveryStore } from '../store/store.js';
import type { RRsetChange } from '../store/store-types.js';
import { checkChildCds, dsSetKey, type CdsRejection } from './cds-check.js';
import {
  CdsFetchError,
  childServers,
  fetchChildAnswers,
  systemResolveHost,
  type ResolveHost,
} from './cds-fetch.js';
import { openCdsState, type CdsReplayState } from './cds-state.js';
import { DELEGATION_TTL, type DelegationSpec } from './delegation.js';

/**
 * The parent polls its children's CDS and CDNSKEY (RFC 7344, RFC 8078; design §5) and follows
 * them: a child rolling its key publishes the new key's CDS beside the old one's, the parent
 * adds the DS, and when the child drops the old CDS, the parent drops its DS — no operator
 * command at either end.
 *
 * Each round lists the delegations with a DS in every zone of this server's store (a child
 * without DS is never enrolled from its CDS: no bootstrapping, RFC 8078 §3 is not used), takes at
 * most `maxChildrenPerRound` of them (continuing where the last round stopped, so every child
 * gets its turn), and for each asks every nameserver address (`cds-fetch.ts`), decides
 * (`cds-check.ts`) and, when the child's CDS validates and asks for a change, replaces the DS
 * RRset through `store.apply` (signed, serial bumped, journaled). The round stops at
 * `roundTimeoutMs`; each question at `timeoutMs`. Each child's outcome goes to the log (the
 * child zone is a range, never a CSI) and to `authoritative_cds_polls_total{outcome}`.
 */

/** Default seconds between rounds. */
export const CDS_POLL_INTERVAL_SECONDS = 3600;
/** Default time for one question to one nameserver. */
export const CDS_QUERY_TIMEOUT_MS = 5000;
/** Default time for a whole round; children not reached wait for the next round. */
export const CDS_ROUND_TIMEOUT_MS = 120_000;
/** Default children checked per round. */
export const CDS_MAX_CHILDREN_PER_ROUND = 100;
/** Default port of the children's nameservers (DNS over TCP). */
export const CDS_DNS_PORT = 53;
/** Delay before the first round after start, so that it does not slow the start itself. */
export const CDS_FIRST_ROUND_DELAY_MS = 1000;

/** The `cds` section of a DP's or the root's config (`config.ts`), defaults filled in. */
export interface CdsConfig {
  enabled: boolean;
  intervalSeconds: number;
  timeoutMs: number;
  roundTimeoutMs: number;
  maxChildrenPerRound: number;
  allowDelete: boolean;
  port: number;
}

/** The config with every default. */
export const DEFAULT_CDS_CONFIG: Readonly<CdsConfig> = Object.freeze({
  enabled: true,
  intervalSeconds: CDS_POLL_INTERVAL_SECONDS,
  timeoutMs: CDS_QUERY_TIMEOUT_MS,
  roundTimeoutMs: CDS_ROUND_TIMEOUT_MS,
  maxChildrenPerRound: CDS_MAX_CHILDREN_PER_ROUND,
  allowDelete: false,
  port: CDS_DNS_PORT,
});

/** The outcome of checking one child: what was done, or why nothing was. */
export type CdsOutcome =
  | 'updated'
  | 'deleted'
  | 'unchanged'
  | 'no-cds'
  /** The DS RRset changed (an operator's `delegate`) while the child was being asked. */
  | 'changed-meanwhile'
  | CdsRejection;

/** One child's outcome in a round. */
export interface CdsPollResult {
  /** The parent zone holding the delegation. */
  parent: string;
  /** The child zone. */
  zone: string;
  outcome: CdsOutcome;
  /** The DS RRset after the round when the child's CDS validated (`updated`, `unchanged`). */
  ds?: DsData[];
  /** Why, for a refusal. */
  detail?: string;
}

/** The metrics the poller records in (`metrics.ts`). */
export interface CdsMetrics {
  recordCdsPoll(outcome: CdsOutcome): void;
  recordCdsUpdate(): void;
}

/** What {@link startCdsPoller} and {@link pollChildCds} use. */
export interface CdsPollerComponents {
  store: DiscoveryStore;
  config: CdsConfig;
  /** Seconds since the epoch: validity of the signatures. Default the system's. */
  clock?: Clock;
  log: Logger;
  metrics?: CdsMetrics;
  /** Replay state; default in memory (`cds-state.ts`; `startDp` gives the data directory's). */
  state?: CdsReplayState;
  /** Addresses of nameservers without glue; default the system resolver. */
  resolveHost?: ResolveHost;
  /** Aborted when the poller stops: questions in flight end at once, nothing more is written. */
  signal?: AbortSignal;
}

/** A running poller. */
export interface CdsPoller {
  /**
   * Runs one round now (or joins the one running) and resolves with each child's outcome.
   * Never rejects for a child's fault; a store failure is logged and ends the round.
   */
  pollOnce(): Promise<CdsPollResult[]>;
  /** Stops the timer and waits for a round in progress to finish its current child. */
  stop(): Promise<void>;
}

/** Starts polling every `config.intervalSeconds` (nothing when `config.enabled` is false). */
export function startCdsPoller(components: CdsPollerComponents): CdsPoller {
  const { store, config, log } = components;
  const state = components.state ?? openCdsState(undefined);
  const stopping = new AbortController();
  let cursor = 0;
  let running: Promise<CdsPollResult[]> | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  const round = async (): Promise<CdsPollResult[]> => {
    const deadline = performance.now() + config.roundTimeoutMs;
    const all = await signedDelegations(store);
    if (all.length === 0) return [];
    const count = Math.min(config.maxChildrenPerRound, all.length);
    const start = cursor % all.length;
    const chosen = Array.from({ length: count }, (_, i) => all[(start + i) % all.length]);
    const results: CdsPollResult[] = [];
    for (const item of chosen) {
      if (item === undefined || stopped) break;
      if (performance.now() >= deadline) {
        log.warn('cds-round-cut', { checked: results.length, due: count });
        break;
      }
      cursor = (cursor + 1) % all.length;
      const result = await pollChildCds(
        item.parent,
        item.delegation,
        { ...components, state, signal: stopping.signal },
        deadline,
      );
      if (stopping.signal.aborted) break;
      results.push(result);
    }
    return results;
  };

  const pollOnce = (): Promise<CdsPollResult[]> => {
    // One round at a time: a timer firing during a long round joins it.
    running ??= round()
      .catch((error: unknown) => {
        log.error('cds-round-failed', { error });
        return [] as CdsPollResult[];
      })
      .finally(() => {
        running = undefined;
      });
    return running;
  };

  const schedule = (ms: number): void => {
    if (stopped) return;
    timer = setTimeout(() => {
      void pollOnce().then(() => schedule(config.intervalSeconds * 1000));
    }, ms);
    timer.unref();
  };
  if (config.enabled) schedule(Math.min(CDS_FIRST_ROUND_DELAY_MS, config.intervalSeconds * 1000));

  return {
    pollOnce,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      stopping.abort();
      await running;
    },
  };
}

/**
 * Every delegation with a DS in every zone of the store, in a stable order. A DP's zone holds
 * millions of names and few delegations: it is read as a stream (`streamZone`, constant memory),
 * keeping only the NS and DS RRsets below the apex; the glue is then read name by name.
 */
async function signedDelegations(
  store: DiscoveryStore,
): Promise<Array<{ parent: string; delegation: DelegationSpec }>> {
  const out: Array<{ parent: string; delegation: DelegationSpec }> = [];
  for (const parent of store.listZones().sort()) {
    const ns = new Map<string, string[]>();
    const ds = new Map<string, DsData[]>();
    for await (const batch of store.streamZone(parent)) {
      for (const rr of batch) {
        const owner = canonicalName(rr.name);
        if (owner === parent) continue;
        if (rr.type === 'NS') ns.set(owner, [...(ns.get(owner) ?? []), canonicalName(rr.data)]);
        else if (rr.type === 'DS') ds.set(owner, [...(ds.get(owner) ?? []), rr.data]);
      }
    }
    for (const [zone, hosts] of [...ns].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const signed = ds.get(zone);
      if (signed === undefined) continue;
      const nameservers = hosts.map((name) => ({ name, addresses: glueOf(store, parent, name) }));
      out.push({ parent, delegation: { zone, nameservers, ds: signed } });
    }
  }
  return out;
}

/** The A and AAAA addresses the parent zone holds for a nameserver inside it (glue). */
function glueOf(store: DiscoveryStore, parent: string, host: string): string[] {
  if (!isSubdomain(host, parent)) return [];
  return [...store.readRRset(parent, host, 'A'), ...store.readRRset(parent, host, 'AAAA')].flatMap(
    (rr) => (rr.type === 'A' || rr.type === 'AAAA' ? [rr.data] : []),
  );
}

/**
 * Checks one child's CDS now and, when it validates and asks for a change, replaces (or with
 * `allowDelete`, removes) the DS RRset in the parent zone; logs and counts the outcome. What
 * the poller does for each child, and `delegate --ds-from-cds` for one.
 */
export async function pollChildCds(
  parent: string,
  delegation: DelegationSpec,
  components: CdsPollerComponents,
  deadline = performance.now() + components.config.roundTimeoutMs,
): Promise<CdsPollResult> {
  const { store, config, log, metrics } = components;
  const state = components.state ?? openCdsState(undefined);
  const zone = delegation.zone;
  const base = { parent: canonicalName(parent), zone };
  const finish = (result: CdsPollResult): CdsPollResult => {
    // Questions cut short by the poller stopping say nothing about the child.
    if (components.signal?.aborted === true) return result;
    metrics?.recordCdsPoll(result.outcome);
    const level = result.outcome === 'updated' || result.outcome === 'deleted' ? 'info' : 'debug';
    const fields = {
      parent: result.parent,
      zone,
      outcome: result.outcome,
      ...(result.detail === undefined ? {} : { detail: result.detail }),
      ...(result.ds === undefined ? {} : { ds: result.ds.map((d) => d.keyTag) }),
    };
    if (level === 'info') log.info('cds-poll', fields);
    else if (isRefusal(result.outcome)) log.warn('cds-poll', fields);
    else log.debug('cds-poll', fields);
    return result;
  };

  /**
   * Records the accepted inception; a state file that cannot be written is logged as an error
   * (the replay check is then only as good as the file) and does not undo the change.
   */
  const remember = (inception: number): void => {
    try {
      state.record(zone, inception);
    } catch (error) {
      log.error('cds-state-failed', { zone, error });
    }
  };

  const fetchOptions = {
    port: config.port,
    timeoutMs: config.timeoutMs,
    deadline,
    resolveHost: components.resolveHost ?? systemResolveHost,
    ...(components.signal === undefined ? {} : { signal: components.signal }),
  };
  let answers;
  try {
    const servers = await childServers(base.parent, delegation, fetchOptions);
    answers = await fetchChildAnswers(zone, servers, fetchOptions);
  } catch (error) {
    if (!(error instanceof CdsFetchError)) throw error;
    const outcome = error.code === 'ERR_CDS_TOO_LARGE' ? 'too-large' : 'unreachable';
    return finish({ ...base, outcome, detail: error.message });
  }
  const check = checkChildCds({
    zone,
    currentDs: delegation.ds,
    answers,
    now: (components.clock ?? systemClock)(),
    lastInception: state.lastInception(zone),
    allowDelete: config.allowDelete,
  });
  switch (check.kind) {
    case 'rejected':
      return finish({ ...base, outcome: check.reason, detail: check.detail });
    case 'no-cds':
      return finish({ ...base, outcome: 'no-cds' });
    case 'unchanged':
      // A validated, agreeing CDS: its inception also bounds what may be replayed later.
      remember(check.inception);
      return finish({ ...base, outcome: 'unchanged', ds: [...delegation.ds] });
    case 'update':
    case 'delete': {
      if (components.signal?.aborted === true) return finish({ ...base, outcome: 'unreachable' });
      // The DS the check started from must still be the one stored: an operator's `delegate`
      // meanwhile wins, and the next round looks again.
      const now = store.readRRset(base.parent, zone, 'DS');
      if (
        dsSetKey(now.map((r) => (r.type === 'DS' ? r.data : undefined)).filter(isDs)) !==
        dsSetKey(delegation.ds)
      ) {
        return finish({ ...base, outcome: 'changed-meanwhile' });
      }
      const ttl = now[0]?.ttl ?? DELEGATION_TTL;
      const change: RRsetChange =
        check.kind === 'delete'
          ? { op: 'delete', name: zone, type: 'DS' }
          : {
              op: 'put',
              name: zone,
              type: 'DS',
              records: check.ds.map((ds) => record(zone, 'DS', ds, ttl)),
            };
      await store.apply(base.parent, [change]);
      remember(check.inception);
      metrics?.recordCdsUpdate();
      return check.kind === 'delete'
        ? finish({ ...base, outcome: 'deleted' })
        : finish({ ...base, outcome: 'updated', ds: check.ds });
    }
  }
}

function isDs(value: DsData | undefined): value is DsData {
  return value !== undefined;
}

function isRefusal(outcome: CdsOutcome): boolean {
  return !['updated', 'deleted', 'unchanged', 'no-cds'].includes(outcome);
}
