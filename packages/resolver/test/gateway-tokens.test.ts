import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codeToType, record, type KeyconfKind, type ResourceRecord } from '@mimi-discovery/common';
import {
  ISSUER_KEYS_MIN_REFRESH_SECONDS,
  createTokenRedeemer,
  openSpentTokenStore,
  type ResolvedAnswer,
  type SpentTokenStore,
  type ValidationStatus,
} from '../src/index.js';
import {
  RR_TYPE_KEYCONF,
  authorizationHeader,
  parseChallengeHeader,
  tokenChallenge,
} from '@mimi-discovery/common';
import { createFakeClock } from '../../../test/helpers/clock.js';
import { createTestIssuer, type TestIssuer } from './oblivious-helpers.js';

// The gateway learns its issuers' token keys from the tree: the KEYCONF RRset at the issuer's
// key name, through the resolver's own resolve(), trusted only when secure, refreshed at its TTL.

const ISSUER = 'issuer.chat.example:8443';
const KEY_NAME = 'issuer.chat.example.email.mimi.arpa';
const ORIGIN = 'resolver.chat.example';
/** The KEYCONF type as the resolver is asked for it. */
const KEYCONF = codeToType(RR_TYPE_KEYCONF);

const clock = createFakeClock(Date.UTC(2027, 0, 1));
let dir: string;
let store: SpentTokenStore;
let issuer: TestIssuer;

/** A KEYCONF record of a key, valid from a minute ago for a day. */
function keyconf(kind: KeyconfKind, config: Uint8Array, ttl = 600): ResourceRecord {
  const now = clock.seconds();
  return record(
    KEY_NAME,
    'KEYCONF',
    { kind, config, notBefore: now - 60, notAfter: now + 86_400 },
    ttl,
  );
}

/** A resolver whose KEYCONF answer the test sets, counting the questions it gets. */
function treeResolver(initial: { status: ValidationStatus; answers: ResourceRecord[] }) {
  const asked: Array<[string, string]> = [];
  let current = initial;
  return {
    asked,
    set(next: typeof initial) {
      current = next;
    },
    async resolve(name: string, type: string): Promise<ResolvedAnswer> {
      asked.push([name, type]);
      return {
        rcode: 'NOERROR',
        status: current.status,
        answers: current.answers,
        authorities: [],
      };
    },
  };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gateway-tokens-'));
  store = openSpentTokenStore(join(dir, 'data'));
  issuer = await createTestIssuer(ISSUER);
}, 30_000);

afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const challenge = (): Uint8Array => tokenChallenge(ISSUER, ORIGIN);

describe('issuer keys from the tree', () => {
  it('accepts the private-token keys of a secure KEYCONF set, and no other kind', async () => {
    const tree = treeResolver({
      status: 'secure',
      answers: [
        keyconf('ohttp', new Uint8Array(41)),
        keyconf('private-token', issuer.spki),
        // A record of another type at the name is ignored, not fatal.
        record(KEY_NAME, 'TXT', [Uint8Array.of(1, 2, 3)], 600),
      ],
    });
    const redeemer = createTokenRedeemer(
      { originName: ORIGIN, issuers: [{ name: ISSUER, keyName: `${KEY_NAME}.` }] },
      { resolver: tree, store, now: clock.seconds },
    );
    const headers = await redeemer.challenges();
    expect(headers).toHaveLength(1);
    const [parsed] = parseChallengeHeader(headers[0] ?? '');
    expect(Buffer.from(parsed?.tokenKey ?? []).equals(Buffer.from(issuer.spki))).toBe(true);
    expect(tree.asked).toEqual([[KEY_NAME, KEYCONF]]);
    const token = await issuer.issue(challenge());
    expect(await redeemer.redeem(authorizationHeader(token))).toEqual({ kind: 'redeemed' });
  });

  it.each<ValidationStatus>(['insecure', 'bogus', 'indeterminate'])(
    'trusts no key from an answer that is %s',
    async (status) => {
      const tree = treeResolver({ status, answers: [keyconf('private-token', issuer.spki)] });
      const redeemer = createTokenRedeemer(
        { originName: ORIGIN, issuers: [{ name: ISSUER, keyName: KEY_NAME }] },
        { resolver: tree, store, now: clock.seconds },
      );
      expect(await redeemer.challenges()).toEqual([]);
      const spentBefore = store.size();
      const token = await issuer.issue(challenge());
      expect(await redeemer.redeem(authorizationHeader(token))).toMatchObject({
        kind: 'refused',
        code: 'ERR_TOKEN_INVALID',
      });
      expect(store.size()).toBe(spentBefore);
    },
  );

  it('resolves the set again once its TTL has passed, and follows what it says', async () => {
    const tree = treeResolver({
      status: 'secure',
      answers: [keyconf('private-token', issuer.spki, 120)],
    });
    const redeemer = createTokenRedeemer(
      { originName: ORIGIN, issuers: [{ name: ISSUER, keyName: KEY_NAME }] },
      { resolver: tree, store, now: clock.seconds },
    );
    expect(await redeemer.challenges()).toHaveLength(1);
    clock.advance(119);
    await redeemer.challenges();
    expect(tree.asked).toHaveLength(1);
    // The key is withdrawn from the tree: after the TTL its tokens are refused.
    tree.set({ status: 'secure', answers: [] });
    const token = await issuer.issue(challenge());
    clock.advance(1);
    expect(await redeemer.redeem(authorizationHeader(token))).toMatchObject({
      code: 'ERR_TOKEN_INVALID',
    });
    expect(tree.asked).toHaveLength(2);
  });

  it('never resolves more often than the minimum refresh, whatever the TTL', async () => {
    const tree = treeResolver({
      status: 'secure',
      answers: [keyconf('private-token', issuer.spki, 0)],
    });
    const redeemer = createTokenRedeemer(
      { originName: ORIGIN, issuers: [{ name: ISSUER, keyName: KEY_NAME }] },
      { resolver: tree, store, now: clock.seconds },
    );
    await Promise.all([redeemer.challenges(), redeemer.challenges(), redeemer.challenges()]);
    clock.advance(ISSUER_KEYS_MIN_REFRESH_SECONDS - 1);
    await redeemer.challenges();
    expect(tree.asked).toHaveLength(1);
  });

  it('refuses an issuer with neither or both of keyName and keysFile', () => {
    const tree = treeResolver({ status: 'secure', answers: [] });
    expect(() =>
      createTokenRedeemer(
        { originName: ORIGIN, issuers: [{ name: ISSUER }] },
        { resolver: tree, store },
      ),
    ).toThrow(expect.objectContaining({ code: 'ERR_GATEWAY_ISSUER' }));
  });
});
