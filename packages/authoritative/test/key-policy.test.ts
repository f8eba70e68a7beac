import { describe, expect, it } from 'vitest';
import {
  DEFAULT_ADD_HOLD_DOWN_SECONDS,
  DEFAULT_DS_TTL_SECONDS,
  DEFAULT_KEY_LIFETIME_SECONDS,
  KeyRollError,
  RFC5011_MAX_PROBE_SECONDS,
  defaultRolloverPolicy,
  dsInterval,
  holdDownInterval,
  planRoll,
  publishInterval,
  retireInterval,
  rfc5011ProbeInterval,
  rollDue,
  startRoll,
  type KeyAction,
  type RollContext,
  type RollKey,
  type RolloverPolicy,
} from '../src/keys/key-policy.js';

/** Small values, as the end-to-end test uses them; each distinct so a wrong sum shows. */
const policy: RolloverPolicy = {
  keyLifetimeSeconds: 0,
  propagationDelaySeconds: 3,
  publishSafetySeconds: 5,
  retireSafetySeconds: 7,
  dsTtlSeconds: undefined,
  registrationDelaySeconds: 100,
  rfc5011: false,
  addHoldDownSeconds: 50,
  revokeSeconds: 40,
};
const rootPolicy: RolloverPolicy = { ...policy, rfc5011: true };
const DNSKEY_TTL = 20;
const MAX_ZONE_TTL = 30;

/** A zone's keys and what the roller does with a plan's actions (new keys get tags 2, 3, …). */
class Zone {
  keys: RollKey[];
  private nextTag: number;
  constructor(first: RollKey) {
    this.keys = [first];
    this.nextTag = first.keyTag + 1;
  }
  apply(actions: readonly KeyAction[]): void {
    for (const action of actions) {
      if (action.kind === 'add') {
        this.keys.push({ keyTag: this.nextTag++, timing: { ...action.timing } });
      } else if (action.kind === 'set') {
        const key = this.keys.find((k) => k.keyTag === action.keyTag);
        if (key === undefined) throw new Error(`no key ${action.keyTag}`);
        key.timing = { ...key.timing, ...action.timing };
      } else {
        this.keys = this.keys.filter((k) => k.keyTag !== action.keyTag);
      }
    }
  }
  key(tag: number): RollKey {
    const key = this.keys.find((k) => k.keyTag === tag);
    if (key === undefined) throw new Error(`no key ${tag}`);
    return key;
  }
}

function activeKey(): RollKey {
  return { keyTag: 1, timing: { created: 0, publish: 0, active: 0, syncPublish: 0 } };
}

function context(now: number, over: Partial<RollContext> = {}): RollContext {
  return {
    now,
    dnskeyTtl: DNSKEY_TTL,
    maxZoneTtl: MAX_ZONE_TTL,
    hasParent: true,
    parentDs: 'not-checked',
    signatures: { pendingResign: 0, signers: [1] },
    refreshedAt: now,
    ...over,
  };
}

/** Plans and applies until the plan has no more actions, as the roller does in one tick. */
function settle(zone: Zone, p: RolloverPolicy, ctx: RollContext): ReturnType<typeof planRoll> {
  for (let i = 0; i < 10; i++) {
    const plan = planRoll('z.example', zone.keys, p, ctx);
    if (plan.actions.length === 0) return plan;
    zone.apply(plan.actions);
  }
  throw new Error('the plan did not settle');
}

describe('RFC 7583 intervals', () => {
  it('publishes the CDS after IpubC = Dprp + TTLkey + publish safety', () => {
    expect(publishInterval(policy, DNSKEY_TTL)).toBe(3 + 20 + 5);
  });

  it('retires after Iret = max zone TTL + Dprp + retire safety', () => {
    expect(retireInterval(policy, MAX_ZONE_TTL)).toBe(30 + 3 + 7);
  });

  it('waits DS TTL + Dprp for a DS change, from the policy, else the served TTL, else 3600', () => {
    expect(dsInterval(policy, 11)).toBe(11 + 3);
    expect(dsInterval(policy, undefined)).toBe(DEFAULT_DS_TTL_SECONDS + 3);
    expect(dsInterval({ ...policy, dsTtlSeconds: 13 }, 11)).toBe(13 + 3);
  });

  it('holds an RFC 5011 key down for Dprp + TTLkey + add hold-down + a probe interval', () => {
    expect(holdDownInterval(policy, DNSKEY_TTL)).toBe(3 + 20 + 50 + Math.max(5, 10));
    // A long TTL: the probe interval (TTL / 2) outgrows the safety margin.
    expect(holdDownInterval(policy, 7200)).toBe(3 + 7200 + 50 + 3600);
    expect(rfc5011ProbeInterval(365 * 86_400)).toBe(RFC5011_MAX_PROBE_SECONDS);
  });

  it('has the documented defaults', () => {
    const dp = defaultRolloverPolicy('dp');
    expect(dp).toMatchObject({
      keyLifetimeSeconds: DEFAULT_KEY_LIFETIME_SECONDS,
      propagationDelaySeconds: 300,
      publishSafetySeconds: 3600,
      retireSafetySeconds: 3600,
      registrationDelaySeconds: 86_400,
      rfc5011: false,
      addHoldDownSeconds: DEFAULT_ADD_HOLD_DOWN_SECONDS,
      revokeSeconds: 30 * 86_400,
    });
    expect(dp.dsTtlSeconds).toBeUndefined();
    expect(defaultRolloverPolicy('root').rfc5011).toBe(true);
  });
});

describe('a CSK roll with double DS (RFC 6781 §4.1.2)', () => {
  it('pre-publishes, adds the CDS, switches after the registration delay, then removes', () => {
    const zone = new Zone(activeKey());
    zone.apply(startRoll('z.example', zone.keys, policy, context(1000)));
    const b = zone.key(2);
    expect(b.timing).toEqual({ created: 1000, publish: 1000, syncPublish: 1000 + 28 });

    expect(settle(zone, policy, context(1010)).phase).toBe('publishing');
    expect(zone.key(2).timing.active).toBeUndefined();

    // CDS for both: the parent (unchecked) acts within Dreg, then DS TTL + Dprp.
    const switchAt = 1028 + 100 + DEFAULT_DS_TTL_SECONDS + 3;
    const waiting = settle(zone, policy, context(1028));
    expect(waiting.phase).toBe('switching');
    expect(zone.key(2).timing.active).toBe(switchAt);
    expect(zone.key(1).timing).toMatchObject({ inactive: switchAt, syncDelete: switchAt });
    expect(waiting.nextEvent).toBe(switchAt);

    // Switched, but the store still has RRsets signed by the old key: wait for re-signing.
    const resigning = settle(
      zone,
      policy,
      context(switchAt, { signatures: { pendingResign: 12, signers: [2] } }),
    );
    expect(resigning).toMatchObject({ phase: 'retiring', waitingFor: 'resign' });
    expect(zone.key(1).timing.remove).toBeUndefined();

    const t = switchAt + 60;
    const retiring = settle(
      zone,
      policy,
      context(t, { signatures: { pendingResign: 0, signers: [2] } }),
    );
    expect(zone.key(1).timing.remove).toBe(t + 30 + 3 + 7);
    expect(retiring.nextEvent).toBe(t + 40);

    // Removed from the key set at t + 40; the file goes once the store has dropped it.
    const removedAt = t + 40;
    settle(
      zone,
      policy,
      context(removedAt, {
        refreshedAt: removedAt - 1,
        signatures: { pendingResign: 0, signers: [2] },
      }),
    );
    expect(zone.keys.map((k) => k.keyTag)).toEqual([1, 2]);
    const done = settle(
      zone,
      policy,
      context(removedAt, { signatures: { pendingResign: 0, signers: [2] } }),
    );
    expect(zone.keys.map((k) => k.keyTag)).toEqual([2]);
    expect(done.phase).toBe('idle');
  });

  it('switches DS TTL + Dprp after every parent nameserver serves the new DS', () => {
    const zone = new Zone(activeKey());
    zone.apply(startRoll('z.example', zone.keys, policy, context(0)));
    const cds = zone.key(2).timing.syncPublish ?? 0;
    expect(
      settle(zone, policy, context(cds + 5, { parentDs: { keyTags: [1], ttl: 11 } })),
    ).toMatchObject({ phase: 'waiting-parent', waitingFor: 'parent-ds', nextEvent: undefined });
    expect(settle(zone, policy, context(cds + 6, { parentDs: 'unreachable' })).waitingFor).toBe(
      'parent-ds',
    );
    expect(zone.key(2).timing.active).toBeUndefined();
    settle(zone, policy, context(cds + 9, { parentDs: { keyTags: [1, 2], ttl: 11 } }));
    expect(zone.key(2).timing.active).toBe(cds + 9 + 11 + 3);
  });

  it('does not remove the old key while its signatures are still served', () => {
    const zone = new Zone(activeKey());
    zone.apply(startRoll('z.example', zone.keys, policy, context(0)));
    settle(zone, policy, context(100));
    const switchAt = zone.key(2).timing.active ?? 0;
    // The store has not switched yet (no refresh since the switch): its signers are the old key.
    const stale = settle(
      zone,
      policy,
      context(switchAt + 1, { signatures: { pendingResign: 0, signers: [1] } }),
    );
    expect(stale.waitingFor).toBe('resign');
    const unknown = settle(zone, policy, context(switchAt + 1, { signatures: undefined }));
    expect(unknown.waitingFor).toBe('resign');
    const unmeasured = settle(
      zone,
      policy,
      context(switchAt + 1, {
        maxZoneTtl: undefined,
        signatures: { pendingResign: 0, signers: [2] },
      }),
    );
    expect(unmeasured.waitingFor).toBe('zone-ttl');
    expect(zone.key(1).timing.remove).toBeUndefined();
  });

  it('rolls a zone without a parent by pre-publication alone', () => {
    const zone = new Zone({ keyTag: 1, timing: { created: 0, publish: 0, active: 0 } });
    zone.apply(startRoll('z.example', zone.keys, policy, context(0, { hasParent: false })));
    expect(zone.key(2).timing.syncPublish).toBeUndefined();
    settle(zone, policy, context(1, { hasParent: false }));
    expect(zone.key(2).timing.active).toBe(28);
    expect(zone.key(1).timing).toEqual({ created: 0, publish: 0, active: 0, inactive: 28 });
  });
});

describe('the root: a trust point rolled by RFC 5011', () => {
  it('activates after the add hold-down, revokes the old key, then removes it', () => {
    const zone = new Zone({ keyTag: 1, timing: { created: 0, publish: 0, active: 0 } });
    const ctx = (now: number, over: Partial<RollContext> = {}): RollContext =>
      context(now, { hasParent: false, ...over });
    zone.apply(startRoll('.', zone.keys, rootPolicy, ctx(0)));
    expect(zone.key(2).timing.syncPublish).toBeUndefined();
    const plan = settle(zone, rootPolicy, ctx(1));
    const activeAt = holdDownInterval(rootPolicy, DNSKEY_TTL);
    expect(activeAt).toBe(3 + 20 + 50 + 10);
    expect(zone.key(2).timing.active).toBe(activeAt);
    expect(zone.key(1).timing.inactive).toBe(activeAt);
    expect(plan).toMatchObject({ phase: 'switching', nextEvent: activeAt });

    const t = activeAt + 2;
    settle(zone, rootPolicy, ctx(t, { signatures: { pendingResign: 0, signers: [2] } }));
    const revoke = t + 40;
    expect(zone.key(1).timing).toMatchObject({ revoke, remove: revoke + 40 });
    expect(
      settle(zone, rootPolicy, ctx(revoke + 1, { signatures: { pendingResign: 0, signers: [2] } }))
        .phase,
    ).toBe('revoking');
  });

  it('keeps a revoked key published at least until caches have seen it', () => {
    const zone = new Zone({ keyTag: 1, timing: { created: 0, publish: 0, active: 0 } });
    const short = { ...rootPolicy, revokeSeconds: 1 };
    zone.apply(startRoll('.', zone.keys, short, context(0, { hasParent: false })));
    settle(zone, short, context(1, { hasParent: false }));
    const t = (zone.key(2).timing.active ?? 0) + 1;
    settle(
      zone,
      short,
      context(t, { hasParent: false, signatures: { pendingResign: 0, signers: [2] } }),
    );
    const { revoke, remove } = zone.key(1).timing;
    expect((remove ?? 0) - (revoke ?? 0)).toBe(3 + DNSKEY_TTL);
  });
});

describe('a trust point with a parent (rfc5011 on a DP)', () => {
  it('switches at the later of the DS wait and the hold-down', () => {
    const zone = new Zone(activeKey());
    zone.apply(startRoll('z.example', zone.keys, rootPolicy, context(0)));
    settle(zone, rootPolicy, context(28, { parentDs: { keyTags: [1, 2], ttl: 1 } }));
    // DS seen at 28 (+1 +3 = 32), hold-down to 83: the hold-down wins.
    expect(zone.key(2).timing.active).toBe(holdDownInterval(rootPolicy, DNSKEY_TTL));
    expect(zone.key(2).timing.syncPublish).toBe(28);
  });
});

describe('emergency roll', () => {
  it('signs with the new key at once and names only it in CDS', () => {
    const zone = new Zone(activeKey());
    zone.apply(startRoll('z.example', zone.keys, policy, context(500), { emergency: true }));
    expect(zone.key(2).timing).toEqual({
      created: 500,
      publish: 500,
      active: 500,
      syncPublish: 500,
    });
    expect(zone.key(1).timing).toMatchObject({ inactive: 500, syncDelete: 500 });
  });

  it('keeps the old key until the parent serves only the new DS, plus DS TTL + Dprp', () => {
    const zone = new Zone(activeKey());
    zone.apply(startRoll('z.example', zone.keys, policy, context(500), { emergency: true }));
    const signed = { signatures: { pendingResign: 0, signers: [2] } };
    for (const parentDs of [
      { keyTags: [1], ttl: 11 },
      { keyTags: [1, 2], ttl: 11 },
      { keyTags: [], ttl: 11 },
    ]) {
      const plan = settle(zone, policy, context(510, { ...signed, parentDs }));
      expect(plan.waitingFor).toBe('parent-ds');
    }
    expect(zone.key(1).timing.remove).toBeUndefined();
    settle(zone, policy, context(520, { ...signed, parentDs: { keyTags: [2], ttl: 90 } }));
    expect(zone.key(1).timing.remove).toBe(520 + 90 + 3);
  });

  it('without a parent check, waits the registration delay before the DS wait', () => {
    const zone = new Zone(activeKey());
    zone.apply(startRoll('z.example', zone.keys, policy, context(500), { emergency: true }));
    const signed = { signatures: { pendingResign: 0, signers: [2] } };
    const early = settle(zone, policy, context(510, signed));
    expect(early).toMatchObject({ waitingFor: 'parent-ds', nextEvent: 600 });
    settle(zone, policy, context(600, signed));
    expect(zone.key(1).timing.remove).toBe(600 + DEFAULT_DS_TTL_SECONDS + 3);
  });

  it('makes the key being rolled in active at once', () => {
    const zone = new Zone(activeKey());
    zone.apply(startRoll('z.example', zone.keys, policy, context(0)));
    settle(zone, policy, context(10));
    zone.apply(startRoll('z.example', zone.keys, policy, context(12), { emergency: true }));
    expect(zone.keys).toHaveLength(2);
    expect(zone.key(2).timing).toMatchObject({ active: 12, syncPublish: 12 });
    expect(zone.key(1).timing).toMatchObject({ inactive: 12, syncDelete: 12 });
  });

  it('at the root, revokes the old key only once the new one is trusted', () => {
    const zone = new Zone({ keyTag: 1, timing: { created: 0, publish: 0, active: 0 } });
    const ctx = context(0, { hasParent: false });
    zone.apply(startRoll('.', zone.keys, rootPolicy, ctx, { emergency: true }));
    settle(zone, rootPolicy, { ...ctx, now: 1, signatures: { pendingResign: 0, signers: [2] } });
    expect(zone.key(1).timing.revoke).toBe(holdDownInterval(rootPolicy, DNSKEY_TTL));
  });
});

describe('starting a roll', () => {
  it('refuses a second roll while one is in progress, and changes nothing', () => {
    const zone = new Zone(activeKey());
    zone.apply(startRoll('z.example', zone.keys, policy, context(0)));
    const before = structuredClone(zone.keys);
    expect(() => startRoll('z.example', zone.keys, policy, context(1))).toThrow(
      expect.objectContaining({ code: 'ERR_KEY_ROLL_IN_PROGRESS' }),
    );
    expect(zone.keys).toEqual(before);
  });

  it('refuses an emergency once the old key is retiring', () => {
    const zone = new Zone(activeKey());
    zone.apply(startRoll('z.example', zone.keys, policy, context(0), { emergency: true }));
    expect(() =>
      startRoll('z.example', zone.keys, policy, context(1), { emergency: true }),
    ).toThrow(KeyRollError);
  });

  it('refuses a zone with no active key', () => {
    const pending: RollKey = { keyTag: 1, timing: { created: 0, publish: 10 } };
    expect(() => startRoll('z.example', [pending], policy, context(0))).toThrow(
      expect.objectContaining({ code: 'ERR_KEY_ROLL_NO_KEY' }),
    );
  });

  it('starts by policy IpubC before the lifetime ends, never with lifetime 0', () => {
    const yearly = { ...policy, keyLifetimeSeconds: 10_000 };
    const key = activeKey();
    expect(rollDue(key, policy, DNSKEY_TTL)).toBeUndefined();
    expect(rollDue(key, yearly, DNSKEY_TTL)).toBe(10_000 - 28);
    const zone = new Zone(key);
    expect(settle(zone, yearly, context(9000))).toMatchObject({ phase: 'idle', nextEvent: 9972 });
    expect(zone.keys).toHaveLength(1);
    expect(settle(zone, yearly, context(9972)).phase).toBe('publishing');
    expect(zone.keys).toHaveLength(2);
  });
});
