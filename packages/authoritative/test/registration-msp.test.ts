import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  keyPairFromSeed,
  maprefTargetName,
  parseCsi,
  type Csi,
  type ResourceRecord,
} from '@mimi-discovery/common';
import { createMemoryStore } from '../src/store/memory-store.js';
import type { DiscoveryStore } from '../src/store/store.js';
import { createRegistrar, type Registrar } from '../src/registration/registration.js';
import {
  RegistrationError,
  type RegistrationErrorCode,
} from '../src/registration/registration-error.js';
import type { RangeAuthkeyLookup, RangeKeys } from '../src/registration/range-authkeys.js';
import { createOutboxChannel } from '../src/registration/channels.js';
import {
  CSIP,
  DAY,
  INDEPENDENT_PROVER,
  OTHER_RECIPIENT,
  PHONE,
  PHONE_ZONE,
  PROVER_SEED,
  RECIPIENT,
  STRANGER,
  T0,
  attest,
  mappingOf,
  maprefBytes,
  removalBytes,
  revocationBytes,
  seed,
  snapshot,
} from './registration-fixture.js';

/**
 * The registrar of an MSP-run DP (design §8, registration.ts): publications, removals and
 * revocations for CSIs of other DPs' ranges go to its MSP zone at their MAPREF-target names,
 * checked against the keys of the CSI's own range as a lookup gives them (here a double of
 * `range-authkeys.ts`, which has its own tests against a DNS server; test/msp-publication.test.ts
 * runs the whole path with a real resolver).
 */

const MSP_ZONE = 'chat.example.email.mimi.arpa';
const TARGET = maprefTargetName(PHONE as Csi, MSP_ZONE);
/** The +44 range's own DP prover: listed at the +44 apex, not in the MSP's store. */
const RANGE_PROVER_SEED = seed(9);
const RANGE_PROVER = keyPairFromSeed(RANGE_PROVER_SEED);

function authkey(role: 'prover' | 'csip', publicKey: Uint8Array): ResourceRecord {
  return {
    name: PHONE_ZONE,
    type: 'AUTHKEY',
    ttl: 300,
    class: 'IN',
    data: { role, algorithm: 15, notAfter: T0 + 3650 * DAY, publicKey },
  };
}

/** The +44 range's keys as the resolver would give them, and what was asked. */
function rangeLookup(): RangeAuthkeyLookup & { asked: Csi[]; fail: boolean } {
  const lookup = {
    asked: [] as Csi[],
    fail: false,
    async lookup(csi: Csi): Promise<RangeKeys> {
      lookup.asked.push(csi);
      if (lookup.fail) {
        throw new RegistrationError('ERR_PROVER_UNVERIFIABLE', 'the resolver is down', {
          detail: 'resolver',
        });
      }
      return {
        zone: PHONE_ZONE,
        authkeys: [
          authkey('prover', RANGE_PROVER.publicKey),
          authkey('prover', INDEPENDENT_PROVER.publicKey),
          authkey('csip', CSIP.publicKey),
        ],
      };
    },
  };
  return lookup;
}

describe('registrar of an MSP-run DP', () => {
  let store: DiscoveryStore;
  let clock: { now: number };
  let lookup: ReturnType<typeof rangeLookup>;
  let registrar: Registrar;

  const make = (msp: boolean): Registrar =>
    createRegistrar({
      store,
      channels: { fallback: createOutboxChannel('/dev/null') },
      now: () => clock.now,
      ...(msp ? { msp: { zone: MSP_ZONE, authkeys: lookup } } : {}),
    });

  beforeEach(async () => {
    clock = { now: T0 };
    // The MSP's store: its own zone only, its own prover (PROVER_SEED) listed at its apex.
    store = createMemoryStore({ now: () => clock.now, proverSeed: PROVER_SEED });
    await store.addZone({
      origin: MSP_ZONE,
      nameservers: ['ns1.chat.example'],
      mname: 'ns1.chat.example',
      rname: 'hostmaster.chat.example',
      keySeed: seed(7),
    });
    lookup = rangeLookup();
    registrar = make(true);
  });

  afterEach(async () => {
    await store.close();
  });

  const maps = (): ResourceRecord[] => store.readRRset(MSP_ZONE, TARGET, 'MAP');
  const byRange = () => attest(PHONE, RECIPIENT, RANGE_PROVER_SEED, T0);

  async function refused(
    action: () => Promise<unknown>,
    code: RegistrationErrorCode,
  ): Promise<RegistrationError> {
    const before = snapshot(store, MSP_ZONE);
    const error = await action().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RegistrationError);
    expect((error as RegistrationError).code).toBe(code);
    expect(snapshot(store, MSP_ZONE)).toEqual(before);
    return error as RegistrationError;
  }

  it('stores a mapping of a +44 CSI, attested by a +44 prover, at its MAPREF-target name', async () => {
    const result = await registrar.publishMapping(mappingOf({ att: byRange(), iat: T0 }));
    expect(result.zone).toBe(MSP_ZONE);
    expect(result.name).toBe('8.1.0.0.6.4.9.7.0.2.4.4.e164.chat.example.email.mimi.arpa');
    expect(maps()).toHaveLength(1);
    expect(lookup.asked).toEqual([PHONE]);
    // An independent prover of the range counts as well.
    await registrar.publishMapping(
      mappingOf({
        att: attest(PHONE, OTHER_RECIPIENT, seed(6), T0),
        recipient: OTHER_RECIPIENT,
        iat: T0,
      }),
    );
    expect(maps()).toHaveLength(2);
  });

  it("refuses a mapping attested by the MSP DP's own prover, naming the CSI's range", async () => {
    // Listed at the MSP zone's apex, but not at +44: the range decides (design §6).
    const own = attest(PHONE, RECIPIENT, PROVER_SEED, T0);
    const error = await refused(
      () => registrar.publishMapping(mappingOf({ att: own, iat: T0 })),
      'ERR_PROVER_NOT_AUTHORIZED',
    );
    expect(error.message).toContain(PHONE_ZONE);
    expect(error.status).toBe(403);
  });

  it('refuses a mapping attested by a stray key', async () => {
    const stray = attest(PHONE, RECIPIENT, seed(5), T0);
    await refused(
      () => registrar.publishMapping(mappingOf({ att: stray, iat: T0 })),
      'ERR_PROVER_NOT_AUTHORIZED',
    );
  });

  it('stores nothing when the range keys cannot be verified', async () => {
    lookup.fail = true;
    const error = await refused(
      () => registrar.publishMapping(mappingOf({ att: byRange(), iat: T0 })),
      'ERR_PROVER_UNVERIFIABLE',
    );
    expect(error.status).toBe(503);
  });

  it('refuses a mapping that does not verify before asking the resolver anything', async () => {
    const att = byRange();
    const request = mappingOf({ att, iat: T0 });
    await refused(
      () => registrar.publishMapping({ csi: '+44 20 7946 0019', mapping: request.mapping }),
      'ERR_MAPPING_INVALID',
    );
    expect(lookup.asked).toEqual([]);
  });

  it('keeps a removal: the old mapping sent again is refused', async () => {
    const published = mappingOf({ att: byRange(), iat: T0, seq: 3 });
    await registrar.publishMapping(published);
    const removed = await registrar.remove(removalBytes(PHONE, RECIPIENT, 3, T0 + 10));
    expect(removed.zone).toBe(MSP_ZONE);
    expect(maps()).toHaveLength(0);
    clock.now += 60;
    await refused(() => registrar.publishMapping(published), 'ERR_STALE_SEQ');
  });

  it("applies a revocation by a CSIP of the CSI's range, and refuses one by another key", async () => {
    await registrar.publishMapping(mappingOf({ att: byRange(), iat: T0 }));
    clock.now += 60;
    await refused(
      () => registrar.revoke(revocationBytes(PHONE, STRANGER, clock.now, clock.now)),
      'ERR_CSIP_NOT_AUTHORIZED',
    );
    const revoked = await registrar.revoke(revocationBytes(PHONE, CSIP, clock.now, clock.now));
    expect(revoked).toMatchObject({ zone: MSP_ZONE, removed: 1 });
    expect(maps()).toHaveLength(0);
  });

  it('stays no prover and no MAPREF holder for other ranges', async () => {
    await refused(() => registrar.prove({ csi: PHONE }), 'ERR_NOT_AUTHORITATIVE');
    await refused(
      () => registrar.confirm({ csi: PHONE, code: '123456', key: RECIPIENT.publicKey }),
      'ERR_NOT_AUTHORITATIVE',
    );
    await refused(
      () => registrar.publishMapref(maprefBytes(byRange(), `x.${MSP_ZONE}`, T0)),
      'ERR_NOT_AUTHORITATIVE',
    );
    expect(lookup.asked).toEqual([]);
  });

  it('without mspZone, refuses CSIs of other ranges as before', async () => {
    const plain = make(false);
    await refused(
      () => plain.publishMapping(mappingOf({ att: byRange(), iat: T0 })),
      'ERR_NOT_AUTHORITATIVE',
    );
    await refused(
      () => plain.remove(removalBytes(PHONE, RECIPIENT, 3, T0)),
      'ERR_NOT_AUTHORITATIVE',
    );
  });

  it('lands every one of concurrent publications for one CSI at the MSP zone', async () => {
    const keys = Array.from({ length: 8 }, (_, i) => keyPairFromSeed(seed(40 + i)));
    await Promise.all(
      keys.map((k) =>
        registrar.publishMapping(
          mappingOf({ att: attest(PHONE, k, RANGE_PROVER_SEED, T0), recipient: k, iat: T0 }),
        ),
      ),
    );
    expect(maps()).toHaveLength(8);
  });

  it.each([
    ['a rank with a leading zero', ['pref:01']],
    ['two ranks', ['pref:1', 'pref:2']],
    ['a context name in capitals', ['ctx:Soccer']],
  ])('refuses an entry with %s, at the MSP zone and in its own range', async (_, tags) => {
    const msps = [{ provider: 'chat.example', tags }];
    const foreign = await refused(
      () => registrar.publishMapping(mappingOf({ att: byRange(), iat: T0, msps })),
      'ERR_MAPPING_INVALID',
    );
    expect(foreign.detail).toBe('tags');
    expect(foreign.message).toMatch(/^msps\[0\]\.tags: /);
    const own = parseCsi('alice@chat.example');
    const att = attest(own, RECIPIENT, PROVER_SEED, T0);
    const ranged = await refused(
      () => registrar.publishMapping(mappingOf({ att, iat: T0, msps })),
      'ERR_MAPPING_INVALID',
    );
    expect(ranged.detail).toBe('tags');
    // Nothing was asked of the resolver for a mapping refused on its face.
    expect(lookup.asked).toEqual([]);
  });

  it('takes the vocabulary and free-form tags', async () => {
    const msps = [
      { provider: 'chat.example', tags: ['business', 'ctx:soccer-parents', 'pref:1', 'same-msp'] },
      { provider: 'text.example', tags: ['primary'] },
    ];
    expect(
      (await registrar.publishMapping(mappingOf({ att: byRange(), iat: T0, msps }))).zone,
    ).toBe(MSP_ZONE);
  });

  it('serves an email CSI of its own range as a range DP does', async () => {
    // The MSP zone is also the range of @chat.example: such a CSI is its own, at its own name.
    const own = parseCsi('alice@chat.example');
    const att = attest(own, RECIPIENT, PROVER_SEED, T0);
    const result = await registrar.publishMapping(mappingOf({ att, iat: T0 }));
    expect(result.name).toMatch(/^[0-9a-f]{56}\.chat\.example\.email\.mimi\.arpa$/);
    expect(lookup.asked).toEqual([]);
  });
});
