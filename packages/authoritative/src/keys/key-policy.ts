import { MimiError } from '@mimi-discovery/common';
import type { KeyTiming, StoredZoneKey } from './key-set.js';

/**
 * The rollover policy of a zone's combined signing key (design §5): when a roll starts and when
 * each of its steps may happen, from the policy's durations and the TTLs the zone actually
 * serves (RFC 7583). Pure arithmetic: the clock, the TTLs, what the parent serves and how far
 * the store has re-signed are arguments; the roller (`key-roller.ts`) observes them and applies
 * what {@link planRoll} returns to the key directory.
 *
 * Every step is written into the keys' timing (BIND's metadata), so a restart, the `keys roll`
 * command or a second process reading the key directory see the same roll. A step that depends
 * on something outside the zone's keys (the parent's DS, the re-signing) is planned when it is
 * observed, and written then as a time in the future.
 *
 * Worked example (a DP, `parent` not checked; Dprp 300, publish and retire safety 3600,
 * DNSKEY TTL 3600, DS TTL 3600, registration delay 86400, max zone TTL 3600), a roll started at
 * t=0 with old key A (active):
 *
 * - t=0: B published (`publish`), its CDS planned at IpubC = 300 + 3600 + 3600 = 7500.
 * - t=7500: CDS names A and B (double DS: RFC 6781 §4.1.2); the parent is assumed to serve
 *   both DS after the registration delay, 93900, and every cache to hold them after DS TTL +
 *   Dprp: B becomes active, A inactive and its CDS withdrawn at 93900 + 3900 = 97800.
 * - t=97800: B signs; the store re-signs every RRset. Once none is left signed by A (observed at
 *   t), A is removed at t + max zone TTL + Dprp + retire safety = t + 7500; its file goes after.
 */

/** Default `keyLifetimeSeconds`: one year from a key's activation to its successor's roll. */
export const DEFAULT_KEY_LIFETIME_SECONDS = 365 * 86_400;
/** Default Dprp (RFC 7583 §2): how long a change takes to reach every nameserver of the zone. */
export const DEFAULT_PROPAGATION_DELAY_SECONDS = 300;
/** Default publish safety margin (RFC 7583 §3.2.1 "publish safety"), added to IpubC. */
export const DEFAULT_PUBLISH_SAFETY_SECONDS = 3600;
/** Default retire safety margin (RFC 7583 §3.2.1 "retire safety"), added to Iret. */
export const DEFAULT_RETIRE_SAFETY_SECONDS = 3600;
/** DS TTL assumed when the policy gives none and the parent's DS cannot be seen. */
export const DEFAULT_DS_TTL_SECONDS = 3600;
/** Default Dreg (RFC 7583 §2): the parent's delay to act on a new CDS, when it is not checked. */
export const DEFAULT_REGISTRATION_DELAY_SECONDS = 86_400;
/** Default RFC 5011 §2.4.1 add hold-down: 30 days. */
export const DEFAULT_ADD_HOLD_DOWN_SECONDS = 30 * 86_400;
/** Default time a revoked key stays published (RFC 5011 §6.6: at least the remove hold-down). */
export const DEFAULT_REVOKE_SECONDS = 30 * 86_400;
/** Longest duration a policy value may take (ten years): larger is a typo, not a policy. */
export const MAX_POLICY_SECONDS = 10 * 365 * 86_400;
/** RFC 5011 §2.3: a resolver probes a trust point at least every 15 days. */
export const RFC5011_MAX_PROBE_SECONDS = 15 * 86_400;

/** A zone's rollover policy, every duration in seconds (config `dnssec.policy`). */
export interface RolloverPolicy {
  /** From a key's activation to its successor's publication (less IpubC); 0: only by command. */
  keyLifetimeSeconds: number;
  /** Dprp, for the zone and for its parent. */
  propagationDelaySeconds: number;
  publishSafetySeconds: number;
  retireSafetySeconds: number;
  /** The parent's DS TTL; undefined: the TTL the parent serves, else {@link DEFAULT_DS_TTL_SECONDS}. */
  dsTtlSeconds: number | undefined;
  /** Dreg, used only when the parent is not checked. */
  registrationDelaySeconds: number;
  /** The zone is a trust point resolvers follow by RFC 5011 (the root): hold-down, revoke. */
  rfc5011: boolean;
  addHoldDownSeconds: number;
  revokeSeconds: number;
}

/** The default policy of a role: RFC 5011 for the root, not for a DP. */
export function defaultRolloverPolicy(role: 'dp' | 'root'): RolloverPolicy {
  return {
    keyLifetimeSeconds: DEFAULT_KEY_LIFETIME_SECONDS,
    propagationDelaySeconds: DEFAULT_PROPAGATION_DELAY_SECONDS,
    publishSafetySeconds: DEFAULT_PUBLISH_SAFETY_SECONDS,
    retireSafetySeconds: DEFAULT_RETIRE_SAFETY_SECONDS,
    dsTtlSeconds: undefined,
    registrationDelaySeconds: DEFAULT_REGISTRATION_DELAY_SECONDS,
    rfc5011: role === 'root',
    addHoldDownSeconds: DEFAULT_ADD_HOLD_DOWN_SECONDS,
    revokeSeconds: DEFAULT_REVOKE_SECONDS,
  };
}

/**
 * What the parent serves as the zone's DS, asked at its nameservers: `not-checked` (no parent
 * nameserver configured: the registration delay stands in), `unreachable` (asked, no agreeing
 * answer: wait), or the key tags of the DS RRset every nameserver served and its TTL.
 */
export type ParentDs = 'not-checked' | 'unreachable' | { keyTags: number[]; ttl: number };

/** What the roller observed of one zone, for {@link planRoll}. */
export interface RollContext {
  now: number;
  /** TTL of the apex DNSKEY RRset as served (TTLkey). */
  dnskeyTtl: number;
  /**
   * The largest TTL of the zone, negative answers included (RFC 2308: min(SOA TTL, MINIMUM)):
   * TTLsig of RFC 7583. Undefined when not measured; needed only to retire a key.
   */
  maxZoneTtl: number | undefined;
  /** The zone has a parent that holds its DS (false for the root's zone). */
  hasParent: boolean;
  parentDs: ParentDs;
  /** The store's signature status: RRsets not yet signed by exactly `signers`, and their tags. */
  signatures: { pendingResign: number; signers: readonly number[] } | undefined;
  /** When the store last computed its key set (`refreshKeys`): removals before it are applied. */
  refreshedAt: number;
}

/** The phase of a zone's roll, as `keys status` and `ctl zone-status` show it. */
export type RollPhase =
  'idle' | 'publishing' | 'waiting-parent' | 'switching' | 'retiring' | 'revoking';

/** One change to the key directory. */
export type KeyAction =
  | { kind: 'add'; timing: KeyTiming }
  | { kind: 'set'; keyTag: number; timing: Partial<KeyTiming> }
  | { kind: 'delete'; keyTag: number };

/** What {@link planRoll} decided for one zone at one instant. */
export interface RollPlan {
  phase: RollPhase;
  /** The next time something is due; undefined: nothing scheduled (waiting on an observation). */
  nextEvent: number | undefined;
  /** Changes to apply now, in order; then plan again (one step may enable the next). */
  actions: KeyAction[];
  /** What the roll waits for, for logs and status (`parent-ds`, `resign`, `zone-ttl`). */
  waitingFor: 'parent-ds' | 'resign' | 'zone-ttl' | undefined;
}

/** The keys of a zone as the policy reads them. */
export type RollKey = Pick<StoredZoneKey, 'keyTag' | 'timing'>;

/** Codes of a {@link KeyRollError}. */
export type KeyRollErrorCode = 'ERR_KEY_ROLL_IN_PROGRESS' | 'ERR_KEY_ROLL_NO_KEY';

/** A roll that cannot start; nothing was changed. */
export class KeyRollError extends MimiError<KeyRollErrorCode> {
  constructor(code: KeyRollErrorCode, message: string) {
    super(code, message);
  }
}

/**
 * IpubC with its safety margin (RFC 7583 §3.3.1): from a key's publication until every cache
 * holds a DNSKEY RRset with it, Dprp + TTLkey + publish safety. Its CDS is published then (the
 * parent must not point at a key that caches do not have yet), and a zone without a parent may
 * sign with it then (RFC 7583 §3.2.1, pre-publication).
 */
export function publishInterval(policy: RolloverPolicy, dnskeyTtl: number): number {
  return policy.propagationDelaySeconds + dnskeyTtl + policy.publishSafetySeconds;
}

/**
 * RFC 5011 §2.3's active refresh: the longest a resolver waits between probes of a trust point,
 * min(15 days, TTLkey / 2) (the RRSIG half-validity is longer than this for our zones). The
 * RFC's one-hour floor is covered by the publish safety, which is 3600 by default.
 */
export function rfc5011ProbeInterval(dnskeyTtl: number): number {
  return Math.min(RFC5011_MAX_PROBE_SECONDS, Math.ceil(dnskeyTtl / 2));
}

/**
 * From a trust point key's publication until RFC 5011 resolvers trust it (RFC 7583 §3.3.4,
 * RFC 5011 §2.4.1): the key reaches every cache (Dprp + TTLkey), the resolver's add hold-down
 * runs, and one more probe sees it still there — Dprp + TTLkey + add hold-down + max(publish
 * safety, one probe interval).
 */
export function holdDownInterval(policy: RolloverPolicy, dnskeyTtl: number): number {
  return (
    policy.propagationDelaySeconds +
    dnskeyTtl +
    policy.addHoldDownSeconds +
    Math.max(policy.publishSafetySeconds, rfc5011ProbeInterval(dnskeyTtl))
  );
}

/**
 * Iret of a signing key with its safety margin (RFC 7583 §3.2.1): once nothing is signed by the
 * old key any more, caches may still hold its signatures for the largest TTL of the zone, after
 * Dprp: max zone TTL + Dprp + retire safety.
 */
export function retireInterval(policy: RolloverPolicy, maxZoneTtl: number): number {
  return maxZoneTtl + policy.propagationDelaySeconds + policy.retireSafetySeconds;
}

/**
 * How long the parent's DS change takes to reach every cache once its nameservers serve it
 * (RFC 7583 §3.3.2, Iret of the DS: DprpP + TTLds).
 */
export function dsInterval(policy: RolloverPolicy, servedDsTtl: number | undefined): number {
  return (
    (policy.dsTtlSeconds ?? servedDsTtl ?? DEFAULT_DS_TTL_SECONDS) + policy.propagationDelaySeconds
  );
}

/** The parent DS TTL the plan uses: the policy's, else the TTL served, else the default. */
function servedDsTtl(parent: ParentDs): number | undefined {
  return typeof parent === 'object' ? parent.ttl : undefined;
}

function reached(at: number | undefined, now: number): at is number {
  return at !== undefined && now >= at;
}

/** A key whose successor was made active without waiting for the parent (an emergency roll). */
function isEmergency(key: RollKey): boolean {
  const { active, syncPublish } = key.timing;
  return active !== undefined && syncPublish !== undefined && active <= syncPublish;
}

/**
 * The first step of a roll, started now (the lifetime ran out, or `keys roll`): the new key
 * published at once. Normal: its CDS is published after IpubC (a zone with a parent); it
 * becomes active in a later step, once the parent serves its DS ({@link planRoll}). Emergency
 * (the old key is compromised or lost): the new key signs at once, the CDS names only it, and the
 * old key stops signing but stays published until the parent serves only the new DS (caches that
 * hold the old DS still validate the new DNSKEY RRset through it) and its signatures have
 * expired from caches. Caches that hold the old DNSKEY RRset (without the new key) fail on what
 * the new key signs for up to TTLkey: the gap an emergency roll cannot avoid.
 *
 * An emergency while the new key of a roll is published but not yet active makes that key active
 * now (its private half is not the compromised one). Throws {@link KeyRollError} when a roll is
 * past its switch (`ERR_KEY_ROLL_IN_PROGRESS`) or, not an emergency, in progress at all, and when
 * the zone has no active key (`ERR_KEY_ROLL_NO_KEY`).
 */
export function startRoll(
  zone: string,
  keys: readonly RollKey[],
  policy: RolloverPolicy,
  context: Pick<RollContext, 'now' | 'dnskeyTtl' | 'hasParent'>,
  options: { emergency?: boolean } = {},
): KeyAction[] {
  const { now, hasParent } = context;
  const live = keys.filter((k) => !reached(k.timing.remove, now));
  const retiring = live.filter((k) => k.timing.inactive !== undefined);
  const current = live.filter(
    (k) => reached(k.timing.active, now) && k.timing.inactive === undefined,
  );
  const incoming = live.filter(
    (k) => !reached(k.timing.active, now) && k.timing.inactive === undefined,
  );
  if (retiring.length > 0) {
    throw new KeyRollError(
      'ERR_KEY_ROLL_IN_PROGRESS',
      `zone ${zone}: a roll is past its switch (key ${retiring.map((k) => k.keyTag).join(', ')} retiring); wait until it is removed`,
    );
  }
  const old = current[0];
  if (old === undefined) {
    throw new KeyRollError('ERR_KEY_ROLL_NO_KEY', `zone ${zone} has no active key to roll`);
  }
  const retireOld = (): KeyAction => ({
    kind: 'set',
    keyTag: old.keyTag,
    timing: {
      inactive: now,
      ...(old.timing.syncPublish !== undefined ? { syncDelete: now } : {}),
    },
  });
  const pending = incoming[0];
  if (pending !== undefined) {
    if (options.emergency !== true) {
      throw new KeyRollError(
        'ERR_KEY_ROLL_IN_PROGRESS',
        `zone ${zone}: key ${pending.keyTag} is already being rolled in`,
      );
    }
    return [
      {
        kind: 'set',
        keyTag: pending.keyTag,
        // syncPublish = active marks the roll as an emergency (see isEmergency).
        timing: {
          publish: Math.min(pending.timing.publish, now),
          active: now,
          ...(hasParent ? { syncPublish: now } : {}),
        },
      },
      retireOld(),
    ];
  }
  if (options.emergency === true) {
    return [
      {
        kind: 'add',
        timing: {
          created: now,
          publish: now,
          active: now,
          ...(hasParent ? { syncPublish: now } : {}),
        },
      },
      retireOld(),
    ];
  }
  return [
    {
      kind: 'add',
      timing: {
        created: now,
        publish: now,
        ...(hasParent ? { syncPublish: now + publishInterval(policy, context.dnskeyTtl) } : {}),
      },
    },
  ];
}

/**
 * When the roll of `key` (the zone's one active key, active since `active`) starts by policy:
 * its activation plus the lifetime, less the time the new key spends being published before it
 * can sign (RFC 7583 §3.3.1: Tpub(N+1) ≤ Tact(N) + L − IpubC), never before its activation.
 * Undefined when the lifetime is 0 (rolls only by command).
 */
export function rollDue(
  key: RollKey,
  policy: RolloverPolicy,
  dnskeyTtl: number,
): number | undefined {
  const active = key.timing.active;
  if (policy.keyLifetimeSeconds === 0 || active === undefined) return undefined;
  const lead = policy.rfc5011
    ? holdDownInterval(policy, dnskeyTtl)
    : publishInterval(policy, dnskeyTtl);
  return Math.max(active, active + policy.keyLifetimeSeconds - lead);
}

/**
 * The next steps of a zone's roll at `context.now`, from its keys' timing and what was
 * observed. The roller applies the actions and plans again until there are none.
 *
 * - Idle (one active key): when {@link rollDue} has come, {@link startRoll}.
 * - Publishing: the new key is in the DNSKEY RRset; with a parent, its CDS comes at IpubC; without
 *   one, it becomes active after IpubC (RFC 5011: after {@link holdDownInterval}).
 * - Waiting for the parent: once every parent nameserver serves the new key's DS (or, unchecked,
 *   the registration delay after its CDS), the switch is set at that time + DS TTL + Dprp (and
 *   not before the hold-down for an RFC 5011 trust point): new key active, old key inactive and
 *   its CDS withdrawn (the parent then drops the old DS).
 * - Retiring: once the store has re-signed everything with the new key, the old key is removed
 *   after {@link retireInterval} (RFC 5011: revoked then, removed `revokeSeconds` later). After an
 *   emergency roll, also once the parent serves only the new DS, plus DS TTL + Dprp.
 * - A removed key's file is deleted once the store's key set no longer has it.
 */
export function planRoll(
  zone: string,
  keys: readonly RollKey[],
  policy: RolloverPolicy,
  context: RollContext,
): RollPlan {
  const { now } = context;
  const actions: KeyAction[] = [];
  const events: number[] = [];
  for (const key of keys) {
    if (reached(key.timing.remove, now)) {
      if (key.timing.remove <= context.refreshedAt)
        actions.push({ kind: 'delete', keyTag: key.keyTag });
    }
  }
  const live = keys.filter((k) => !reached(k.timing.remove, now));
  // The newest key that is not on its way out is the incoming (or the only) one.
  const newest = [...live].reverse().find((k) => k.timing.inactive === undefined);
  const olds = live.filter((k) => k !== newest);
  const plan = (phase: RollPhase, waitingFor?: RollPlan['waitingFor']): RollPlan => ({
    phase,
    nextEvent: nextTime(keys, now, events),
    actions,
    waitingFor,
  });
  if (newest === undefined) return plan('idle');

  if (olds.length === 0) {
    if (!reached(newest.timing.active, now)) {
      // A lone key not yet signing: its own timing drives it (a zone's first key is active at once).
      return plan('idle');
    }
    const due = rollDue(newest, policy, context.dnskeyTtl);
    if (due !== undefined) {
      if (due <= now) actions.push(...startRoll(zone, live, policy, context));
      else events.push(due);
    }
    return plan(actions.some((a) => a.kind === 'add') ? 'publishing' : 'idle');
  }

  const t = newest.timing;
  const holdReady = t.publish + (policy.rfc5011 ? holdDownInterval(policy, context.dnskeyTtl) : 0);
  let phase: RollPhase = 'switching';
  let waitingFor: RollPlan['waitingFor'];

  if (t.active === undefined) {
    // Not yet decided when the new key signs.
    const pubReady = t.publish + publishInterval(policy, context.dnskeyTtl);
    let switchAt: number | undefined;
    if (!context.hasParent) {
      switchAt = Math.max(pubReady, holdReady);
      phase = 'publishing';
    } else if (t.syncPublish === undefined) {
      actions.push({ kind: 'set', keyTag: newest.keyTag, timing: { syncPublish: pubReady } });
      phase = 'publishing';
    } else if (now < t.syncPublish) {
      phase = 'publishing';
    } else {
      phase = 'waiting-parent';
      const parent = context.parentDs;
      if (parent === 'not-checked') {
        // RFC 7583 §3.3.2: Dreg, then the DS propagates (DprpP + TTLds).
        switchAt = t.syncPublish + policy.registrationDelaySeconds + dsInterval(policy, undefined);
      } else if (parent !== 'unreachable' && parent.keyTags.includes(newest.keyTag)) {
        switchAt = now + dsInterval(policy, parent.ttl);
      } else {
        waitingFor = 'parent-ds';
      }
      switchAt = switchAt === undefined ? undefined : Math.max(switchAt, holdReady);
    }
    if (switchAt !== undefined) {
      actions.push({ kind: 'set', keyTag: newest.keyTag, timing: { active: switchAt } });
      for (const old of olds) actions.push(retire(old, switchAt));
    }
    return { ...plan(phase, waitingFor), phase };
  }

  // The new key's activation is set: each old key is retired with it, then removed.
  for (const old of olds) {
    const o = old.timing;
    if (o.inactive === undefined) {
      actions.push(retire(old, t.active));
      continue;
    }
    if (now < o.inactive) continue;
    phase = 'retiring';
    if (o.remove !== undefined) {
      if (reached(o.revoke, now)) phase = 'revoking';
      continue;
    }
    const status = context.signatures;
    const resigned =
      status !== undefined &&
      status.pendingResign === 0 &&
      !status.signers.includes(old.keyTag) &&
      status.signers.includes(newest.keyTag);
    if (!resigned) {
      waitingFor = 'resign';
      continue;
    }
    if (context.maxZoneTtl === undefined) {
      waitingFor = 'zone-ttl';
      continue;
    }
    let retireAt = now + retireInterval(policy, context.maxZoneTtl);
    if (context.hasParent && isEmergency(newest)) {
      const parent = context.parentDs;
      if (parent === 'not-checked') {
        const onlyNew = (t.syncPublish ?? t.active) + policy.registrationDelaySeconds;
        if (now < onlyNew) {
          events.push(onlyNew);
          waitingFor = 'parent-ds';
          continue;
        }
        retireAt = Math.max(retireAt, now + dsInterval(policy, undefined));
      } else if (
        parent !== 'unreachable' &&
        parent.keyTags.length > 0 &&
        parent.keyTags.every((tag) => tag === newest.keyTag)
      ) {
        retireAt = Math.max(retireAt, now + dsInterval(policy, servedDsTtl(parent)));
      } else {
        waitingFor = 'parent-ds';
        continue;
      }
    }
    if (policy.rfc5011) {
      // RFC 5011 §2.1: a revoked key validates nothing but its own revocation, so it is revoked
      // only once nothing it signed is cached, and once the new key is trusted (after an
      // emergency, the hold-down may still run). Published revoked for `revokeSeconds`, and
      // at least until caches have seen it.
      const revoke = Math.max(retireAt, t.publish + holdDownInterval(policy, context.dnskeyTtl));
      const remove =
        revoke + Math.max(policy.revokeSeconds, policy.propagationDelaySeconds + context.dnskeyTtl);
      actions.push({ kind: 'set', keyTag: old.keyTag, timing: { revoke, remove } });
    } else {
      actions.push({ kind: 'set', keyTag: old.keyTag, timing: { remove: retireAt } });
    }
  }
  return { ...plan(phase, waitingFor), phase };
}

/** The old key stops signing at `at`, and its CDS is withdrawn then (RFC 7344 §4). */
function retire(old: RollKey, at: number): KeyAction {
  return {
    kind: 'set',
    keyTag: old.keyTag,
    timing: { inactive: at, ...(old.timing.syncPublish !== undefined ? { syncDelete: at } : {}) },
  };
}

/** The earliest future time among the keys' timings and `extra`. */
function nextTime(
  keys: readonly RollKey[],
  now: number,
  extra: readonly number[],
): number | undefined {
  let next: number | undefined;
  const consider = (at: number | undefined): void => {
    if (at !== undefined && at > now && (next === undefined || at < next)) next = at;
  };
  for (const key of keys) for (const at of Object.values(key.timing)) consider(at);
  for (const at of extra) consider(at);
  return next;
}
