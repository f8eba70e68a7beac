import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DNSKEY_FLAG_REVOKE,
  computeKeyTag,
  createTrustAnchor,
  createZoneKey,
  parseTrustAnchor,
  signRRset,
  type DnskeyData,
  type LogFields,
  type Logger,
  type RecordOf,
  type ResourceRecord,
  type ZoneKey,
} from '@mimi-discovery/common';
import {
  AUTO_TRUST_FIRST_PROBE_SECONDS,
  AUTO_TRUST_MAX_KEYS,
  AUTO_TRUST_MIN_PROBE_SECONDS,
  applyDnskeys,
  formatTrustPoint,
  parseTrustPoint,
  probeInterval,
  startAutoTrust,
  trustPointOf,
  trustedDs,
  type DnskeyFetch,
  type TrustPoint,
} from '../src/index.js';

/**
 * RFC 5011 in the resolver (`auto-trust.ts`): each transition of RFC 5011 §4 on DNSKEY RRsets
 * built and signed here, with the time injected, and the hostile cases — a new key seen only in
 * an RRset no trusted key signed, a revocation without the revoked key's own signature, a file
 * that cannot be written.
 */

const ZONE = 'mimi.arpa';
const T0 = 1_800_000_000;
const HOLD = { add: 600, remove: 900 };
const TTL = 300;

const seeded = (byte: number): ZoneKey =>
  createZoneKey(ZONE, { seed: new Uint8Array(32).fill(byte) });
const OLD = seeded(0x51);
const NEW = seeded(0x52);
const ROGUE = seeded(0x53);

/** The key as published with the REVOKE bit: another key tag, the same private key. */
function revoked(key: ZoneKey): ZoneKey {
  const dnskey: DnskeyData = { ...key.dnskey, flags: key.dnskey.flags | DNSKEY_FLAG_REVOKE };
  return { ...key, dnskey, keyTag: computeKeyTag(dnskey) };
}

/** The apex's DNSKEY RRset of `published`, signed by each of `signers`, as a response's answers. */
function dnskeyAnswers(
  published: readonly ZoneKey[],
  signers: readonly ZoneKey[],
  now = T0,
): ResourceRecord[] {
  const rrset: Array<RecordOf<'DNSKEY'>> = published.map((k) => ({
    name: ZONE,
    type: 'DNSKEY',
    class: 'IN',
    ttl: TTL,
    data: k.dnskey,
  }));
  const validity = { inception: now - 3600, expiration: now + 30 * 86_400 };
  return [...rrset, ...signers.map((k) => signRRset(rrset, k, validity))];
}

const anchored = (): TrustPoint => trustPointOf(createTrustAnchor(ZONE, [OLD.dnskey]), T0);
const stateOf = (point: TrustPoint, key: ZoneKey): string | undefined =>
  point.keys.find((k) => k.keyTag === key.keyTag)?.state;
const trustedTags = (point: TrustPoint): number[] =>
  trustedDs(point)
    .map((d) => d.keyTag)
    .sort((a, b) => a - b);

describe('RFC 5011 transitions (applyDnskeys)', () => {
  it('adds a new SEP key signed by a trusted key, and trusts it only after the hold-down', () => {
    let point = anchored();
    const add = applyDnskeys(point, dnskeyAnswers([OLD, NEW], [OLD]), T0, HOLD);
    expect(add.outcome.kind).toBe('secure');
    point = add.point;
    expect(stateOf(point, NEW)).toBe('addpend');
    expect(trustedTags(point)).toEqual([OLD.keyTag]);

    // Seen again before the hold-down ends: still pending.
    const early = applyDnskeys(point, dnskeyAnswers([OLD, NEW], [OLD]), T0 + HOLD.add - 1, HOLD);
    expect(stateOf(early.point, NEW)).toBe('addpend');

    // RFC 5011 §2.4.1: trusted at the first validated probe after the hold-down.
    const valid = applyDnskeys(point, dnskeyAnswers([OLD, NEW], [OLD]), T0 + HOLD.add, HOLD);
    expect(stateOf(valid.point, NEW)).toBe('valid');
    expect(trustedTags(valid.point)).toEqual([OLD.keyTag, NEW.keyTag].sort((a, b) => a - b));
  });

  it('takes the RRset TTL as the hold-down when it is longer (RFC 5011 §2.4.1)', () => {
    const long = { add: 10, remove: 10 };
    const { point } = applyDnskeys(anchored(), dnskeyAnswers([OLD, NEW], [OLD]), T0, long);
    expect(point.keys.find((k) => k.keyTag === NEW.keyTag)?.addAt).toBe(T0 + TTL);
  });

  it('forgets a pending key that disappears before the hold-down ends', () => {
    const added = applyDnskeys(anchored(), dnskeyAnswers([OLD, NEW], [OLD]), T0, HOLD).point;
    const gone = applyDnskeys(added, dnskeyAnswers([OLD], [OLD]), T0 + 60, HOLD);
    expect(stateOf(gone.point, NEW)).toBeUndefined();
    expect(gone.outcome.changes).toEqual([{ keyTag: NEW.keyTag, state: 'forgotten' }]);
  });

  it('marks a trusted key missing when absent, still trusted, and valid again when back', () => {
    let point = applyDnskeys(anchored(), dnskeyAnswers([OLD, NEW], [OLD]), T0, HOLD).point;
    point = applyDnskeys(point, dnskeyAnswers([OLD, NEW], [OLD]), T0 + HOLD.add, HOLD).point;
    point = applyDnskeys(point, dnskeyAnswers([NEW], [NEW]), T0 + HOLD.add + 10, HOLD).point;
    expect(stateOf(point, OLD)).toBe('missing');
    expect(trustedTags(point)).toContain(OLD.keyTag);
    point = applyDnskeys(point, dnskeyAnswers([OLD, NEW], [NEW]), T0 + HOLD.add + 20, HOLD).point;
    expect(stateOf(point, OLD)).toBe('valid');
  });

  it('drops a revoked, self-signed key at once and never trusts it again', () => {
    let point = applyDnskeys(anchored(), dnskeyAnswers([OLD, NEW], [OLD]), T0, HOLD).point;
    point = applyDnskeys(point, dnskeyAnswers([OLD, NEW], [OLD]), T0 + HOLD.add, HOLD).point;
    const revoke = applyDnskeys(
      point,
      dnskeyAnswers([revoked(OLD), NEW], [revoked(OLD), NEW]),
      T0 + HOLD.add + 10,
      HOLD,
    );
    expect(revoke.outcome.kind).toBe('secure');
    point = revoke.point;
    expect(stateOf(point, OLD)).toBe('revoked');
    expect(trustedTags(point)).toEqual([NEW.keyTag]);
    // Published again without the bit: stays revoked (RFC 5011 §2.1).
    point = applyDnskeys(point, dnskeyAnswers([OLD, NEW], [NEW]), T0 + HOLD.add + 20, HOLD).point;
    expect(stateOf(point, OLD)).toBe('revoked');
    // After the remove hold-down: removed, kept so that it is never added again.
    const later = T0 + HOLD.add + 10 + HOLD.remove;
    point = applyDnskeys(point, dnskeyAnswers([NEW], [NEW]), later, HOLD).point;
    expect(stateOf(point, OLD)).toBe('removed');
    point = applyDnskeys(point, dnskeyAnswers([OLD, NEW], [NEW]), later + 10, HOLD).point;
    expect(stateOf(point, OLD)).toBe('removed');
    expect(trustedTags(point)).toEqual([NEW.keyTag]);
  });

  it('applies a self-signed revocation even when no other trusted key signs the RRset', () => {
    const { point, outcome } = applyDnskeys(
      anchored(),
      dnskeyAnswers([revoked(OLD), ROGUE], [revoked(OLD)]),
      T0,
      HOLD,
    );
    expect(stateOf(point, OLD)).toBe('revoked');
    // ...but the unvalidated RRset adds nothing.
    expect(outcome.kind).toBe('bogus');
    expect(stateOf(point, ROGUE)).toBeUndefined();
  });

  it('hostile: ignores a revoked key that is not self-signed', () => {
    // The RRset validates with OLD, and lists OLD with the REVOKE bit that only OLD signed
    // without it: a forged revocation (someone else's RRset, or a replay) changes nothing.
    const { point } = applyDnskeys(anchored(), dnskeyAnswers([revoked(OLD), OLD], [OLD]), T0, HOLD);
    expect(stateOf(point, OLD)).toBe('valid');
    const forged = applyDnskeys(
      anchored(),
      dnskeyAnswers([revoked(OLD)], [ROGUE]).map((rr) =>
        rr.type === 'RRSIG' ? { ...rr, data: { ...rr.data, keyTag: revoked(OLD).keyTag } } : rr,
      ),
      T0,
      HOLD,
    );
    expect(stateOf(forged.point, OLD)).toBe('valid');
  });

  it('hostile: never adds a key seen only in an RRset no trusted key signs', () => {
    // Signed by the new key alone (an attacker's own RRset), or not signed at all.
    for (const answers of [
      dnskeyAnswers([OLD, ROGUE], [ROGUE]),
      dnskeyAnswers([OLD, ROGUE], []),
      // A signature by the trusted key over another RRset, pasted in.
      [
        ...dnskeyAnswers([OLD, ROGUE], []),
        ...dnskeyAnswers([OLD], [OLD]).filter((rr) => rr.type === 'RRSIG'),
      ],
    ]) {
      let point = anchored();
      for (let t = T0; t <= T0 + 3 * HOLD.add; t += HOLD.add) {
        const applied = applyDnskeys(point, answers, t, HOLD);
        expect(applied.outcome.kind).toBe('bogus');
        point = applied.point;
      }
      expect(stateOf(point, ROGUE)).toBeUndefined();
      expect(trustedTags(point)).toEqual([OLD.keyTag]);
    }
  });

  it('hostile: refuses a DNSKEY RRset of more keys than it tracks', () => {
    const many = Array.from({ length: AUTO_TRUST_MAX_KEYS + 1 }, (_, i) => seeded(0x60 + i));
    const { point, outcome } = applyDnskeys(
      anchored(),
      dnskeyAnswers([OLD, ...many], [OLD]),
      T0,
      HOLD,
    );
    expect(outcome.kind).toBe('bogus');
    expect(point.keys).toHaveLength(1);
  });

  it('turns a DS-only anchor into the key it names once that key is seen', () => {
    const anchor = { ...createTrustAnchor(ZONE, [OLD.dnskey]), dnskeys: [] };
    const point = trustPointOf(anchor, T0);
    expect(point.keys).toHaveLength(0);
    const seen = applyDnskeys(point, dnskeyAnswers([OLD, NEW], [OLD]), T0, HOLD).point;
    expect(stateOf(seen, OLD)).toBe('valid');
    expect(stateOf(seen, NEW)).toBe('addpend');
    expect(seen.ds).toHaveLength(0);
  });
});

describe('probe interval (RFC 5011 §2.3)', () => {
  it('probes first a minute after start, or sooner with a lower maxProbeSeconds', () => {
    const start = (settings: { maxProbeSeconds?: number }) =>
      startAutoTrust({
        anchor: createTrustAnchor(ZONE, [OLD.dnskey]),
        settings,
        now: () => T0,
        fetch: async (): Promise<DnskeyFetch> => ({ kind: 'failed', detail: 'not asked' }),
        schedule: false,
      });
    const plain = start({});
    const lab = start({ maxProbeSeconds: 5 });
    expect(plain.nextProbeAt()).toBe(T0 + AUTO_TRUST_FIRST_PROBE_SECONDS);
    expect(lab.nextProbeAt()).toBe(T0 + 5);
    plain.close();
    lab.close();
  });

  it('is half the TTL or signature validity, at least an hour, capped by maxProbeSeconds', () => {
    const answers = dnskeyAnswers([OLD], [OLD]);
    expect(probeInterval(answers, T0, false)).toBe(AUTO_TRUST_MIN_PROBE_SECONDS);
    expect(probeInterval(answers, T0, false, 5)).toBe(5);
    const long = answers.map((rr) =>
      rr.type === 'RRSIG' ? { ...rr, data: { ...rr.data, originalTtl: 172_800 } } : rr,
    );
    expect(probeInterval(long, T0, false)).toBe(86_400);
    expect(probeInterval(long, T0, true)).toBe(17_280);
    expect(probeInterval(undefined, T0, true)).toBe(AUTO_TRUST_MIN_PROBE_SECONDS);
  });
});

describe('the anchor file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'auto-trust-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes trusted keys as records and the others commented, and reads the states back', () => {
    let point = applyDnskeys(anchored(), dnskeyAnswers([OLD, NEW], [OLD]), T0, HOLD).point;
    const text = formatTrustPoint(point, T0);
    // A static reader (the resolver's, Unbound's trust-anchor-file) trusts only OLD.
    const anchor = parseTrustAnchor(text);
    expect(anchor.dnskeys.map(computeKeyTag)).toEqual([OLD.keyTag]);
    expect(text).toMatch(/;;state=2 \[ VALID \]/);
    expect(text).toMatch(/^;;addpend: mimi\.arpa\. .*;;state=1 \[ ADDPEND \].*;;addat=\d+$/m);
    const back = parseTrustPoint(text, T0 + 5);
    expect(back.keys).toEqual(point.keys);
    point = applyDnskeys(back, dnskeyAnswers([OLD, NEW], [OLD]), T0 + HOLD.add, HOLD).point;
    point = applyDnskeys(
      point,
      dnskeyAnswers([revoked(OLD), NEW], [revoked(OLD), NEW]),
      T0 + HOLD.add,
      HOLD,
    ).point;
    const after = formatTrustPoint(point, T0 + HOLD.add);
    expect(parseTrustAnchor(after).dnskeys.map(computeKeyTag)).toEqual([NEW.keyTag]);
    expect(parseTrustPoint(after, T0).keys).toEqual(point.keys);
  });

  it("reads a file Unbound's autotrust wrote: a live ADDPEND line stays pending", () => {
    const line = (key: ZoneKey, state: string, code: number): string =>
      `mimi.arpa.\t300\tIN\tDNSKEY\t257 3 15 ${Buffer.from(key.dnskey.publicKey).toString('base64')} ;{id = ${key.keyTag} (ksk), size = 256b} ;;state=${code} [  ${state}  ] ;;count=1 ;;lastchange=${T0} ;;Thu Jan 15 08:00:00 2027`;
    const text = [
      '; autotrust trust anchor file',
      ';;id: mimi.arpa. 1',
      line(OLD, 'VALID', 2),
      line(NEW, 'ADDPEND', 1),
      '',
    ].join('\n');
    const point = parseTrustPoint(text, T0 + 5);
    expect(point.keys.map((k) => [k.keyTag, k.state])).toEqual([
      [OLD.keyTag, 'valid'],
      [NEW.keyTag, 'addpend'],
    ]);
    expect(trustedTags(point)).toEqual([OLD.keyTag]);
  });

  /** A keeper on a fake clock whose fetch returns `answers.current`. */
  function keeper(file: string, answers: { current: ResourceRecord[] }, log?: Logger) {
    const clock = { now: T0 };
    const trust = startAutoTrust({
      anchor: createTrustAnchor(ZONE, [OLD.dnskey]),
      settings: { addHoldDownSeconds: HOLD.add, removeHoldDownSeconds: HOLD.remove, file },
      now: () => clock.now,
      fetch: async (): Promise<DnskeyFetch> => ({
        kind: 'response',
        answers: answers.current,
        server: 'test',
      }),
      schedule: false,
      ...(log === undefined ? {} : { log }),
    });
    return { trust, clock };
  }

  it('keeps the hold-down across a restart through the file', async () => {
    const file = join(dir, 'root.key');
    writeFileSync(file, formatTrustPoint(anchored(), T0));
    const answers = { current: dnskeyAnswers([OLD, NEW], [OLD]) };
    const first = keeper(file, answers);
    await first.trust.probe();
    first.trust.close();
    expect(readFileSync(file, 'utf8')).toContain('ADDPEND');
    // A new process: the pending key's hold-down is the one started before.
    const second = keeper(file, answers);
    expect(second.trust.counts()).toMatchObject({ addpend: 1, valid: 1 });
    second.clock.now = T0 + HOLD.add;
    await second.trust.probe();
    expect(second.trust.counts()).toMatchObject({ addpend: 0, valid: 2 });
    second.trust.close();
    expect(parseTrustAnchor(readFileSync(file, 'utf8')).dnskeys).toHaveLength(2);
  });

  it('hostile: a file that cannot be written keeps the state in memory and logs once', async () => {
    const locked = join(dir, 'locked');
    mkdirSync(locked);
    const file = join(locked, 'root.key');
    writeFileSync(file, formatTrustPoint(anchored(), T0));
    chmodSync(locked, 0o500);
    const before = readFileSync(file, 'utf8');
    const warnings: string[] = [];
    const log = captureLog(warnings);
    const answers = { current: dnskeyAnswers([OLD, NEW], [OLD]) };
    const { trust, clock } = keeper(file, answers, log);
    try {
      await trust.probe();
      clock.now = T0 + HOLD.add;
      await trust.probe();
      // Root ignores directory permissions: the write may succeed there, and then nothing is unwritten.
      if (process.getuid?.() !== 0) {
        expect(trust.unwritten()).toBe(true);
        expect(warnings.filter((w) => w === 'trust-anchor-file-unwritable')).toHaveLength(1);
        expect(readFileSync(file, 'utf8')).toBe(before);
      }
      expect(trust.counts()).toMatchObject({ valid: 2 });
    } finally {
      trust.close();
      chmodSync(locked, 0o700);
    }
  });

  it('hostile: a path that is a directory cannot be written, whoever runs it', async () => {
    const warnings: string[] = [];
    const answers = { current: dnskeyAnswers([OLD, NEW], [OLD]) };
    const { trust } = keeper(join(dir, 'no-such-dir', 'root.key'), answers, captureLog(warnings));
    await trust.probe();
    await trust.probe();
    expect(trust.unwritten()).toBe(true);
    expect(trust.counts()).toMatchObject({ addpend: 1, valid: 1 });
    expect(warnings.filter((w) => w === 'trust-anchor-file-unwritable')).toHaveLength(1);
    trust.close();
  });
});

/** A logger that records the event names of warnings. */
function captureLog(warnings: string[]): Logger {
  const log: Logger = {
    namespace: 'test',
    debug: () => undefined,
    info: () => undefined,
    warn: (event: string, fields?: LogFields) => {
      void fields;
      warnings.push(event);
    },
    error: () => undefined,
    child: () => log,
  };
  return log;
}
