import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DNSKEY_FLAG_REVOKE,
  EDE_DNSKEY_MISSING,
  buildQuery,
  queryUdp,
  computeKeyTag,
  createZoneKey,
  namesEqual,
  parseTrustAnchor,
  signRRset,
  type DnskeyData,
  type Message,
  type RecordOf,
  type ResourceRecord,
  type ZoneKey,
} from '@mimi-discovery/common';
import { createResolver, type Resolver } from '@mimi-discovery/resolver';
import { createFakeClock, type FakeClock } from './helpers/clock.js';
import { buildHierarchy, type Hierarchy } from './helpers/hierarchy.js';
import { APEX, PHONE_ZONE } from './helpers/network.js';
import { startUnbound } from './helpers/unbound.js';

/**
 * The resolver follows a roll of the root's key by RFC 5011, against the hierarchy's real root
 * server whose DNSKEY RRset the test changes: first a second key is published beside the old one
 * (both signing the DNSKEY RRset), then the old key is revoked (published with the REVOKE bit,
 * signing the RRset itself under its new key tag) and the new key signs the whole zone. A
 * resolver with RFC 5011 on keeps validating throughout; one with it off fails once the old key
 * is revoked; a key seen only in an RRset the trusted key did not sign is never trusted; a stock
 * Unbound validates the rolled root with the anchor file the resolver rewrote. The hold-downs run
 * on a fake clock.
 */

const HOLD_DOWN = 600;
let h: Hierarchy;
let dir: string;
let OLD: ZoneKey;
const NEW = createZoneKey(APEX, { seed: new Uint8Array(32).fill(0x71) });
const ROGUE = createZoneKey(APEX, { seed: new Uint8Array(32).fill(0x72) });
const opened: Resolver[] = [];

/** The root's DNSKEY RRset as the test has it published now. */
type Phase =
  | { kind: 'honest' }
  | { kind: 'publish'; keys: ZoneKey[]; dnskeySigners: ZoneKey[]; signer?: ZoneKey };
let phase: Phase = { kind: 'honest' };

function revoked(key: ZoneKey): ZoneKey {
  const dnskey: DnskeyData = { ...key.dnskey, flags: key.dnskey.flags | DNSKEY_FLAG_REVOKE };
  return { ...key, dnskey, keyTag: computeKeyTag(dnskey) };
}

const validity = () => {
  const now = Math.floor(Date.now() / 1000);
  return { inception: now - 3600, expiration: now + 86_400 };
};

/**
 * A section of the root's response with the apex DNSKEY RRset replaced by the phase's and every
 * signed RRset signed again by the phase's signer (when it has one), as a root in the middle of
 * a roll serves them.
 */
function rewrite(section: readonly ResourceRecord[], p: Extract<Phase, { kind: 'publish' }>) {
  const signed = new Set(
    section.flatMap((rr) =>
      rr.type === 'RRSIG' ? [`${rr.name.toLowerCase()}|${rr.data.typeCovered}`] : [],
    ),
  );
  const isApexKeys = (rr: ResourceRecord): boolean =>
    namesEqual(rr.name, APEX) &&
    (rr.type === 'DNSKEY' || (rr.type === 'RRSIG' && rr.data.typeCovered === 'DNSKEY'));
  const hadKeys = section.some((rr) => isApexKeys(rr) && rr.type === 'DNSKEY');
  const out: ResourceRecord[] = section.filter(
    (rr) => !isApexKeys(rr) && (p.signer === undefined || rr.type !== 'RRSIG'),
  );
  if (p.signer !== undefined) {
    const groups = new Map<string, ResourceRecord[]>();
    for (const rr of out) {
      const id = `${rr.name.toLowerCase()}|${rr.type}`;
      if (signed.has(id)) groups.set(id, [...(groups.get(id) ?? []), rr]);
    }
    for (const rrset of groups.values()) out.push(signRRset(rrset, p.signer, validity()));
  }
  if (hadKeys) {
    const rrset: Array<RecordOf<'DNSKEY'>> = p.keys.map((k) => ({
      name: APEX,
      type: 'DNSKEY',
      class: 'IN',
      ttl: 300,
      data: k.dnskey,
    }));
    out.push(...rrset, ...p.dnskeySigners.map((k) => signRRset(rrset, k, validity())));
  }
  return out;
}

beforeAll(async () => {
  h = await buildHierarchy();
  dir = mkdtempSync(join(tmpdir(), 'trust-roll-'));
  const key = h.root.store.zoneKey(APEX);
  if (key === undefined) throw new Error('the root has no key');
  OLD = key;
  h.root.tamper = (_query, honest): Message => {
    const p = phase;
    if (p.kind === 'honest') return honest;
    return {
      ...honest,
      answers: rewrite(honest.answers, p),
      authorities: rewrite(honest.authorities, p),
    };
  };
});

afterAll(async () => {
  await Promise.allSettled(opened.map((r) => r.close()));
  await h?.close();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

const hasUnbound = spawnSync('sh', ['-c', 'command -v unbound']).status === 0;

/** What a stock validating Unbound trusting `anchorFile` answers for the +44 zone's SOA. */
async function unboundStatus(
  anchorFile: string,
  name: string,
): Promise<{ rcode: string; ad: boolean }> {
  const unboundDir = join(dir, `unbound-${name}`);
  mkdirSync(unboundDir);
  const unbound = await startUnbound({
    dir: unboundDir,
    trustAnchorFile: anchorFile,
    stubs: [
      { zone: APEX, port: h.root.udp.port },
      { zone: PHONE_ZONE, port: h.phone.udp.port },
    ],
  });
  try {
    const query = buildQuery(PHONE_ZONE, 'SOA', { dnssecOk: true, recursionDesired: true });
    const response = await queryUdp({ host: '127.0.0.1', port: unbound.port }, query, {
      timeoutMs: 5000,
    });
    return { rcode: response.rcode, ad: response.flags.ad };
  } finally {
    await unbound.stop();
  }
}

/** A resolver on `clock` with RFC 5011 on (its state in `file`) or off; probes driven by hand. */
function resolverOf(clock: FakeClock, file: string | undefined): Resolver {
  const resolver = createResolver(
    h.resolverConfig({
      autoTrustAnchor:
        file === undefined
          ? { enabled: false }
          : { addHoldDownSeconds: HOLD_DOWN, removeHoldDownSeconds: 900, file },
    }),
    { now: () => clock.now() / 1000, autoTrustSchedule: false },
  );
  opened.push(resolver);
  return resolver;
}

const tagsIn = (file: string): number[] =>
  parseTrustAnchor(readFileSync(file, 'utf8'))
    .dnskeys.map(computeKeyTag)
    .sort((a, b) => a - b);

describe('RFC 5011 against a real root server', () => {
  it('follows a roll: new key pending, trusted after the hold-down, old key revoked', async () => {
    const file = join(dir, 'root.key');
    writeFileSync(file, h.trustAnchor);
    const clock = createFakeClock();
    const following = resolverOf(clock, file);
    const fixed = resolverOf(clock, undefined);
    expect((await following.resolve(PHONE_ZONE, 'SOA')).status).toBe('secure');
    expect((await following.probeTrustAnchor()).kind).toBe('secure');
    expect(following.stats().trustAnchorKeys).toMatchObject({ valid: 1, addpend: 0 });

    // 1. The root publishes a second key beside the old one.
    phase = { kind: 'publish', keys: [OLD, NEW], dnskeySigners: [OLD, NEW] };
    const added = await following.probeTrustAnchor();
    expect(added.changes).toEqual([{ keyTag: NEW.keyTag, state: 'addpend' }]);
    expect(tagsIn(file)).toEqual([OLD.keyTag]);
    clock.advance(HOLD_DOWN - 10);
    await following.probeTrustAnchor();
    expect(following.stats().trustAnchorKeys).toMatchObject({ valid: 1, addpend: 1 });
    clock.advance(10);
    await following.probeTrustAnchor();
    expect(following.stats().trustAnchorKeys).toMatchObject({ valid: 2, addpend: 0 });
    expect(tagsIn(file)).toEqual([OLD.keyTag, NEW.keyTag].sort((a, b) => a - b));

    // 2. The old key is revoked; the new one signs the zone.
    phase = {
      kind: 'publish',
      keys: [revoked(OLD), NEW],
      dnskeySigners: [revoked(OLD), NEW],
      signer: NEW,
    };
    following.flushCache();
    fixed.flushCache();
    const revocation = await following.probeTrustAnchor();
    expect(revocation.changes).toEqual([{ keyTag: OLD.keyTag, state: 'revoked' }]);
    expect(following.stats().trustAnchorKeys).toMatchObject({ valid: 1, revoked: 1 });
    expect(tagsIn(file)).toEqual([NEW.keyTag]);
    const soa = await following.resolve(PHONE_ZONE, 'SOA');
    expect(soa.status).toBe('secure');
    expect((await following.resolve(APEX, 'DNSKEY')).status).toBe('secure');

    // A resolver that did not follow: the only key it trusts is revoked.
    const stuck = await fixed.resolve(PHONE_ZONE, 'SOA');
    expect(stuck.rcode).toBe('SERVFAIL');
    expect(stuck.ede?.[0]?.infoCode).toBe(EDE_DNSKEY_MISSING);

    // A restart reads the file: the new key alone is trusted, and validates.
    const restarted = resolverOf(clock, file);
    expect(restarted.trustAnchorKeys().map((k) => [k.keyTag, k.state])).toEqual([
      [OLD.keyTag, 'revoked'],
      [NEW.keyTag, 'valid'],
    ]);
    expect((await restarted.resolve(PHONE_ZONE, 'SOA')).status).toBe('secure');

    // A stock Unbound reads the file the resolver wrote (its `trust-anchor-file`) and validates
    // the rolled root with it; with the anchor from before the roll it cannot.
    if (hasUnbound) {
      expect(await unboundStatus(file, 'rolled')).toEqual({ rcode: 'NOERROR', ad: true });
      const before = join(dir, 'before.key');
      writeFileSync(before, h.trustAnchor);
      expect((await unboundStatus(before, 'before')).rcode).toBe('SERVFAIL');
    }
    phase = { kind: 'honest' };
  });

  it('hostile: never trusts a key the trusted key did not sign, however long it is seen', async () => {
    const file = join(dir, 'forged.key');
    writeFileSync(file, h.trustAnchor);
    const clock = createFakeClock();
    const resolver = resolverOf(clock, file);
    // A forged RRset: the old key listed, signed only by the intruder's key.
    phase = { kind: 'publish', keys: [OLD, ROGUE], dnskeySigners: [ROGUE] };
    for (let i = 0; i < 3; i++) {
      expect((await resolver.probeTrustAnchor()).kind).toBe('bogus');
      clock.advance(HOLD_DOWN);
    }
    // A revocation of the old key that the old key did not sign.
    phase = { kind: 'publish', keys: [revoked(OLD), ROGUE], dnskeySigners: [ROGUE], signer: ROGUE };
    expect((await resolver.probeTrustAnchor()).kind).toBe('bogus');
    expect(resolver.trustAnchorKeys().map((k) => [k.keyTag, k.state])).toEqual([
      [OLD.keyTag, 'valid'],
    ]);
    expect(tagsIn(file)).toEqual([OLD.keyTag]);
    // ...and what the intruder signed does not validate.
    resolver.flushCache();
    expect((await resolver.resolve(PHONE_ZONE, 'SOA')).status).toBe('bogus');
    phase = { kind: 'honest' };
    resolver.flushCache();
    expect((await resolver.resolve(PHONE_ZONE, 'SOA')).status).toBe('secure');
  });
});
