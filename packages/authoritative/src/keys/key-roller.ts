import {
  buildQuery,
  canonicalName,
  queryTcp,
  type Clock,
  type Logger,
  type ResourceRecord,
  type RRType,
} from '@mimi-discovery/common';
import type { KeyDirectory } from './key-directory.js';
import { keyStateAt, type KeyState, type KeyTiming, type StoredZoneKey } from './key-set.js';
import {
  KeyRollError,
  planRoll,
  startRoll,
  type KeyAction,
  type ParentDs,
  type RollContext,
  type RollPhase,
  type RolloverPolicy,
} from './key-policy.js';

/**
 * The key roller (design §5): in the process that re-signs, it walks every zone's roll through
 * the steps `key-policy.ts` plans, writing them into the key directory, and has the store
 * compute its key set again (`refreshKeys`) whenever a key's timing passes. It wakes at the next
 * timing event and at least every {@link ROLLER_RELOAD_INTERVAL_SECONDS}: each tick first
 * re-reads the key directory, so a `keys roll` run by another process takes effect within that.
 * While a roll waits on something outside the keys, the parent is asked at most every
 * `checkIntervalSeconds` and the store's re-signing is driven on at each tick.
 */

/**
 * How often the roller reads the key directory again at the most (a `keys roll` run by another
 * process, an emergency above all, takes effect within this).
 */
export const ROLLER_RELOAD_INTERVAL_SECONDS = 10;
/** Default wait between checks while a roll waits on the parent or the re-signing. */
export const ROLLER_CHECK_INTERVAL_SECONDS = 60;
/** Time for each parent nameserver to answer the DS query. */
export const PARENT_QUERY_TIMEOUT_MS = 3000;
/** Most parent nameservers asked (config `dnssec.parent`). */
export const MAX_PARENT_SERVERS = 16;
/** Most plan-and-apply rounds per zone and tick (each round is one step of a roll). */
export const MAX_ROLL_STEPS_PER_TICK = 8;

/** What the roller needs of the store: `DiscoveryStore` has all of it. */
export interface RollerStore {
  readonly keys: KeyDirectory;
  listZones(): string[];
  readRRset(origin: string, name: string, type: RRType): ResourceRecord[];
  findZone(name: string): string | undefined;
  streamZone(origin: string): AsyncIterable<readonly ResourceRecord[]>;
  refreshKeys(origin: string, now?: number): Promise<{ serial: number; changed: boolean }>;
  signatureStatus(
    origin: string,
  ): { pendingResign: number; signers: readonly number[] } | undefined;
  resign(before?: number): Promise<number>;
}

/** One parent nameserver (Do53, asked over TCP). */
export interface ParentServer {
  address: string;
  port: number;
}

/** One zone's roll as `keys status` and `ctl zone-status` show it. */
export interface RollStatus {
  zone: string;
  phase: RollPhase;
  nextEvent: number | undefined;
  keys: Array<{ keyTag: number; state: KeyState; timing: KeyTiming }>;
}

/** What {@link startKeyRoller} takes. */
export interface KeyRollerOptions {
  store: RollerStore;
  policy: RolloverPolicy;
  /** The parent's nameservers, asked for the zones' DS; empty: `registrationDelaySeconds`. */
  parent: readonly ParentServer[];
  clock: Clock;
  log: Logger;
  /** Zones with no parent (the root's apex): rolled without CDS. */
  parentless?: readonly string[];
  /** Wait between checks while waiting on the parent or the re-signing; default 60. */
  checkIntervalSeconds?: number;
  /** Counts each roll step by phase (`dp_key_roll_steps_total`). */
  metrics?: { rollStep(zone: string, phase: RollPhase): void };
  /** Asks the parent for a zone's DS; default over TCP to `parent` ({@link queryParentDs}). */
  queryParent?: (origin: string) => Promise<ParentDs>;
  /** False: no timer, ticks only when called (tests, one-shot commands). Default true. */
  timer?: boolean;
}

/** The running roller (`dp.roller`). */
export interface KeyRoller {
  /** One pass over every zone now (the timer calls it; concurrent calls share one pass). */
  tick(): Promise<void>;
  /** The rolls of every zone, or of one. */
  status(origin?: string): RollStatus[];
  /** Starts a roll of `origin` now (`keys roll`); rejects with `KeyRollError` and changes nothing. */
  roll(origin: string, options?: { emergency?: boolean }): Promise<RollStatus>;
  /** When the timer fires next (seconds), undefined when stopped or without a timer. */
  nextTick(): number | undefined;
  /** Stops the timer and waits for a running pass. */
  stop(): Promise<void>;
}

/**
 * The DS key tags and TTL every parent nameserver serves for `origin` over TCP, or
 * `unreachable` when one fails or they disagree (as Knot's KSK submission check, every parent
 * server must serve the new DS before the roll goes on). The answer decides only when a step
 * happens, never what is signed: a forged one could at most hasten a switch.
 */
export async function queryParentDs(
  origin: string,
  servers: readonly ParentServer[],
  timeoutMs = PARENT_QUERY_TIMEOUT_MS,
): Promise<ParentDs> {
  if (servers.length === 0) return 'not-checked';
  const name = canonicalName(origin);
  const answers = await Promise.all(
    servers.slice(0, MAX_PARENT_SERVERS).map(async (server) => {
      try {
        const response = await queryTcp(
          { host: server.address, port: server.port },
          buildQuery(name === '' ? '.' : name, 'DS'),
          { timeoutMs },
        );
        if (response.rcode !== 'NOERROR') return undefined;
        const ds = response.answers.filter(
          (rr): rr is Extract<ResourceRecord, { type: 'DS' }> =>
            rr.type === 'DS' && canonicalName(rr.name) === name,
        );
        return {
          keyTags: [...new Set(ds.map((rr) => rr.data.keyTag))].sort((a, b) => a - b),
          ttl: ds.length === 0 ? 0 : Math.min(...ds.map((rr) => rr.ttl ?? 0)),
        };
      } catch {
        // A server that fails or times out leaves the answer unknown: the roll waits.
        return undefined;
      }
    }),
  );
  const first = answers[0];
  if (first === undefined) return 'unreachable';
  for (const answer of answers) {
    if (answer === undefined || answer.keyTags.join(',') !== first.keyTags.join(',')) {
      return 'unreachable';
    }
  }
  return { keyTags: first.keyTags, ttl: Math.max(...answers.map((a) => a?.ttl ?? 0)) };
}

/**
 * The largest TTL the zone serves, negative answers included (RFC 2308 §5: min(SOA TTL, SOA
 * MINIMUM)), read in the store's bounded batches: how long caches may keep a signature.
 */
export async function maxZoneTtl(store: RollerStore, origin: string): Promise<number> {
  let max = 0;
  for await (const batch of store.streamZone(origin)) {
    for (const rr of batch) {
      const ttl = rr.ttl ?? 0;
      if (ttl > max) max = ttl;
      if (rr.type === 'SOA') max = Math.max(max, Math.min(ttl, rr.data.minimum));
    }
  }
  return max;
}

/** The apex DNSKEY TTL as served (TTLkey). */
function dnskeyTtl(store: Pick<RollerStore, 'readRRset'>, origin: string): number {
  return store.readRRset(origin, origin, 'DNSKEY')[0]?.ttl ?? 0;
}

/** The status of one zone's roll at `now`, planned but not applied. */
export function zoneRollStatus(
  store: Pick<RollerStore, 'keys' | 'readRRset' | 'signatureStatus'>,
  policy: RolloverPolicy,
  origin: string,
  now: number,
  hasParent: boolean,
): RollStatus {
  const zone = canonicalName(origin);
  const keys = store.keys.zoneKeys(zone);
  const plan = planRoll(zone, keys, policy, {
    now,
    dnskeyTtl: dnskeyTtl(store, zone),
    maxZoneTtl: undefined,
    hasParent,
    parentDs: 'unreachable',
    signatures: store.signatureStatus(zone),
    refreshedAt: now,
  });
  return {
    zone,
    phase: plan.phase,
    nextEvent: plan.nextEvent,
    keys: keys.map((k) => ({ keyTag: k.keyTag, state: keyStateAt(k, now), timing: k.timing })),
  };
}

/**
 * Applies a plan's actions to the key directory, in order. An `add` makes a new key (its private
 * half written before the promise resolves); `set` and `delete` name a key by tag.
 */
export async function applyKeyActions(
  keys: KeyDirectory,
  origin: string,
  actions: readonly KeyAction[],
): Promise<StoredZoneKey[]> {
  const added: StoredZoneKey[] = [];
  for (const action of actions) {
    if (action.kind === 'add') added.push(await keys.addZoneKey(origin, action.timing));
    else if (action.kind === 'set') await keys.setTiming(origin, action.keyTag, action.timing);
    else await keys.deleteZoneKey(origin, action.keyTag);
  }
  return added;
}

/**
 * Starts a roll of one zone in the key directory and has the store publish it: what `keys
 * roll` does with the server stopped (a running server's roller picks it up at its next tick).
 */
export async function rollZoneKey(
  store: RollerStore,
  policy: RolloverPolicy,
  origin: string,
  options: { now: number; hasParent: boolean; emergency?: boolean },
): Promise<RollStatus> {
  const zone = canonicalName(origin);
  store.keys.reload();
  if (!store.listZones().includes(zone)) {
    throw new KeyRollError('ERR_KEY_ROLL_NO_KEY', `no zone ${zone} in this store`);
  }
  const actions = startRoll(
    zone,
    store.keys.zoneKeys(zone),
    policy,
    { now: options.now, dnskeyTtl: dnskeyTtl(store, zone), hasParent: options.hasParent },
    options.emergency === true ? { emergency: true } : {},
  );
  await applyKeyActions(store.keys, zone, actions);
  await store.refreshKeys(zone, options.now);
  return zoneRollStatus(store, policy, zone, options.now, options.hasParent);
}

/** Starts the roller of a server's zones (`startDp` does, in the process that re-signs). */
export function startKeyRoller(options: KeyRollerOptions): KeyRoller {
  const { store, policy, clock, log } = options;
  const parentless = new Set((options.parentless ?? []).map(canonicalName));
  const checkInterval = options.checkIntervalSeconds ?? ROLLER_CHECK_INTERVAL_SECONDS;
  const askParent =
    options.queryParent ?? ((origin: string) => queryParentDs(origin, options.parent));
  const useTimer = options.timer !== false;
  /** Per zone: when the store last computed its key set. */
  const refreshedAt = new Map<string, number>();
  /** Per zone: the parent's last answer, reused for `checkIntervalSeconds`. */
  const asked = new Map<string, { at: number; answer: ParentDs }>();
  /** Per zone: the plan of the last tick, for `status`. */
  const lastPlan = new Map<string, { phase: RollPhase; nextEvent: number | undefined }>();
  let running: Promise<void> | undefined;
  let queue: Promise<unknown> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  let timerAt: number | undefined;
  let stopped = false;

  const hasParent = (zone: string): boolean => !parentless.has(zone);

  /** Whether some timing of the zone's keys passed in (since, now]. */
  const timingPassed = (keys: readonly StoredZoneKey[], since: number, now: number): boolean =>
    keys.some((k) =>
      Object.values(k.timing).some((at) => at !== undefined && at > since && at <= now),
    );

  /**
   * The DS of `zone` when its parent zone is in the same store (a sub-delegation served by the
   * same DP): read there, not asked of `dnssec.parent`, which lists the servers of the zones'
   * common parent.
   */
  function localParentDs(zone: string): ParentDs | undefined {
    const dot = zone.indexOf('.');
    if (dot < 0) return undefined;
    const parentZone = store.findZone(zone.slice(dot + 1));
    if (parentZone === undefined) return undefined;
    const ds = store.readRRset(parentZone, zone, 'DS');
    return {
      keyTags: [...new Set(ds.map((rr) => (rr.type === 'DS' ? rr.data.keyTag : -1)))].sort(
        (a, b) => a - b,
      ),
      ttl: ds.length === 0 ? 0 : Math.min(...ds.map((rr) => rr.ttl ?? 0)),
    };
  }

  async function refresh(zone: string, now: number): Promise<void> {
    const result = await store.refreshKeys(zone, now);
    refreshedAt.set(zone, now);
    if (result.changed) log.info('keys-refreshed', { zone, serial: result.serial });
  }

  /** One zone's steps at `now`; returns when it wants to be looked at again. */
  async function tickZone(zone: string, now: number, reloaded: boolean): Promise<number> {
    const last = refreshedAt.get(zone);
    if (reloaded || last === undefined || timingPassed(store.keys.zoneKeys(zone), last, now)) {
      await refresh(zone, now);
    }
    let plan: ReturnType<typeof planRoll> | undefined;
    let parentDs: ParentDs | undefined;
    let zoneTtl: number | undefined;
    for (let step = 0; step < MAX_ROLL_STEPS_PER_TICK; step++) {
      const keys = store.keys.zoneKeys(zone);
      const context: RollContext = {
        now,
        dnskeyTtl: dnskeyTtl(store, zone),
        maxZoneTtl: zoneTtl,
        hasParent: hasParent(zone),
        parentDs:
          parentDs ??
          localParentDs(zone) ??
          (options.parent.length === 0 && !options.queryParent ? 'not-checked' : 'unreachable'),
        signatures: store.signatureStatus(zone),
        refreshedAt: refreshedAt.get(zone) ?? 0,
      };
      plan = planRoll(zone, keys, policy, context);
      // Observations are made only when the plan waits on them: the parent is asked, and the
      // zone read, once per tick at most.
      if (
        plan.actions.length === 0 &&
        plan.waitingFor === 'parent-ds' &&
        parentDs === undefined &&
        context.parentDs === 'unreachable'
      ) {
        const last = asked.get(zone);
        if (last !== undefined && now - last.at < checkInterval) parentDs = last.answer;
        else {
          parentDs = await askParent(zone);
          asked.set(zone, { at: now, answer: parentDs });
          if (parentDs === 'unreachable') log.warn('parent-ds-unknown', { zone });
        }
        continue;
      }
      if (plan.actions.length === 0 && plan.waitingFor === 'zone-ttl' && zoneTtl === undefined) {
        zoneTtl = await maxZoneTtl(store, zone);
        continue;
      }
      if (plan.actions.length === 0) break;
      await applyKeyActions(store.keys, zone, plan.actions);
      for (const action of plan.actions) {
        log.info('key-roll-step', {
          zone,
          phase: plan.phase,
          action: action.kind,
          ...(action.kind === 'add' ? {} : { keyTag: action.keyTag }),
          ...(action.kind === 'delete' ? {} : { timing: action.timing }),
        });
      }
      options.metrics?.rollStep(zone, plan.phase);
      // A step may take effect at once (an emergency, a CDS due now): the store computes its
      // key set again, which changes nothing when every new time is still to come.
      if (plan.actions.some((a) => a.kind !== 'delete')) await refresh(zone, now);
    }
    if (plan === undefined) return now + checkInterval;
    lastPlan.set(zone, { phase: plan.phase, nextEvent: plan.nextEvent });
    if ((store.signatureStatus(zone)?.pendingResign ?? 0) > 0) {
      // After a switch: re-sign what the old key signed now rather than at the next
      // re-signing pass (bounded batches, `resign` of the store).
      await store.resign();
    }
    const status = store.signatureStatus(zone);
    const waiting = plan.waitingFor !== undefined || (status?.pendingResign ?? 0) > 0;
    const next = plan.nextEvent ?? now + ROLLER_RELOAD_INTERVAL_SECONDS;
    return waiting ? Math.min(next, now + checkInterval) : next;
  }

  async function pass(): Promise<void> {
    const now = clock();
    let reloaded: boolean;
    try {
      reloaded = store.keys.reload();
    } catch (error) {
      // An unreadable key directory (a file half-copied by hand): the keys in memory stand, and
      // the next tick reads it again.
      log.error('key-directory-reload-failed', { error });
      reloaded = false;
    }
    let wake = now + ROLLER_RELOAD_INTERVAL_SECONDS;
    for (const zone of store.listZones()) {
      try {
        wake = Math.min(wake, await tickZone(zone, now, reloaded));
      } catch (error) {
        log.error('key-roll-failed', { zone, error });
        wake = Math.min(wake, now + checkInterval);
      }
    }
    schedule(Math.max(wake, now + 1));
  }

  function schedule(at: number): void {
    if (!useTimer || stopped) return;
    if (timer !== undefined) clearTimeout(timer);
    timerAt = at;
    const delayMs = Math.min(ROLLER_RELOAD_INTERVAL_SECONDS, Math.max(0, at - clock())) * 1000;
    timer = setTimeout(() => {
      timer = undefined;
      tick().catch((error: unknown) => {
        log.error('key-roll-failed', { error });
        schedule(clock() + checkInterval);
      });
    }, delayMs);
    timer.unref();
  }

  /** Runs `work` after every earlier tick or roll (one at a time: no step is planned twice). */
  function serial<T>(work: () => Promise<T>): Promise<T> {
    const result = queue.then(work);
    queue = result.catch(() => undefined);
    return result;
  }

  function tick(): Promise<void> {
    if (stopped) return Promise.resolve();
    running ??= serial(pass).finally(() => {
      running = undefined;
    });
    return running;
  }

  function status(origin?: string): RollStatus[] {
    const now = clock();
    const zones = origin === undefined ? store.listZones() : [canonicalName(origin)];
    return zones.map((zone) => {
      const planned = zoneRollStatus(store, policy, zone, now, hasParent(zone));
      const last = lastPlan.get(zone);
      // The last tick saw what a dry plan cannot (the parent, the re-signing): its phase stands
      // until the keys say otherwise.
      return last !== undefined && planned.phase === last.phase
        ? { ...planned, nextEvent: planned.nextEvent ?? last.nextEvent }
        : planned;
    });
  }

  async function roll(
    origin: string,
    rollOptions: { emergency?: boolean } = {},
  ): Promise<RollStatus> {
    const zone = canonicalName(origin);
    const result = await serial(async () => {
      const now = clock();
      const rolled = await rollZoneKey(store, policy, zone, {
        now,
        hasParent: hasParent(zone),
        ...(rollOptions.emergency === true ? { emergency: true } : {}),
      });
      refreshedAt.set(zone, now);
      log.info('key-roll-started', {
        zone,
        emergency: rollOptions.emergency === true,
        keys: rolled.keys.map((k) => k.keyTag),
      });
      // The steps that follow at once (an emergency's, a root's activation time) are planned
      // in the same turn: the status returned is the roll's, not a step behind.
      await pass();
      return rolled;
    });
    return status(zone)[0] ?? result;
  }

  if (useTimer) schedule(clock());

  return {
    tick,
    status,
    roll,
    nextTick: () => (stopped ? undefined : timerAt),
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      timerAt = undefined;
      await queue;
    },
  };
}
