import { attestsCsi, createLogger, decodeMapping, keyPairFromSeed } from '@mimi-discovery/common';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createOutboxChannel,
  type CodeChannel,
  type CodeMessage,
} from '../src/registration/channels.js';
import {
  RegistrationError,
  type RegistrationErrorCode,
} from '../src/registration/registration-error.js';
import {
  MAPREF_TTL_SECONDS,
  MAX_ATTESTATION_LIFETIME_SECONDS,
  MAX_MAPREFS_PER_CSI,
  MAX_MAPPINGS_PER_CSI,
  MAX_MAP_TTL_SECONDS,
} from '../src/store/mapping-ops.js';
import type { DiscoveryStore } from '../src/store/store.js';
import {
  createRegistrar,
  type Registrar,
  type RegistrarOptions,
} from '../src/registration/registration.js';
import {
  CSIP,
  DAY,
  EMAIL,
  INDEPENDENT_PROVER,
  OTHER_RECIPIENT,
  PHONE,
  PHONE_NAME,
  PHONE_ZONE,
  PROVER_SEED,
  RECIPIENT,
  STRANGER,
  T0,
  attest,
  createFixture,
  held,
  lastCode,
  mappingBytes,
  mappingOf,
  maprefBytes,
  removalBytes,
  revocationBytes,
  seed,
  snapshot,
  type Fixture,
  type HeldAttestation,
} from './registration-fixture.js';

/** The code of the RegistrationError that `promise` rejects with. */
async function refusal(promise: Promise<unknown>): Promise<RegistrationError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(RegistrationError);
  return error as RegistrationError;
}

/** A channel that records what it is asked to send, and fails when told to. */
function recordingChannel(name: string): CodeChannel & { sent: CodeMessage[]; fail: boolean } {
  const channel = {
    name,
    sent: [] as CodeMessage[],
    fail: false,
    async send(message: CodeMessage) {
      channel.sent.push(message);
      if (channel.fail) throw new Error('gateway down');
    },
  };
  return channel;
}

describe('registrar', () => {
  let fixture: Fixture;
  let registrar: Registrar;

  const make = (extra: Partial<RegistrarOptions> = {}): Registrar =>
    createRegistrar({
      store: fixture.store,
      channels: { fallback: createOutboxChannel(fixture.outbox) },
      now: () => fixture.clock.now,
      ...extra,
    });

  beforeEach(async () => {
    fixture = await createFixture();
    registrar = make();
  });

  afterEach(async () => {
    await fixture.cleanup();
  });

  async function attested(recipient = RECIPIENT, typed = PHONE): Promise<HeldAttestation> {
    const { csi } = await registrar.prove({ csi: typed });
    const code = lastCode(fixture.outbox, csi);
    const confirmed = await registrar.confirm({ csi: typed, code, key: recipient.publicKey });
    return held(confirmed.attestation, csi);
  }

  const maps = () => fixture.store.readRRset(PHONE_ZONE, PHONE_NAME, 'MAP');
  const maprefs = () => fixture.store.readRRset(PHONE_ZONE, PHONE_NAME, 'MAPREF');

  /** Expects `action` to be refused with `code`, leaving the phone zone as it was. */
  async function refused(
    action: () => Promise<unknown>,
    code: RegistrationErrorCode,
  ): Promise<RegistrationError> {
    const before = snapshot(fixture.store, PHONE_ZONE);
    const error = await refusal(action());
    expect(error.code).toBe(code);
    expect(snapshot(fixture.store, PHONE_ZONE)).toEqual(before);
    return error;
  }

  describe('codes', () => {
    it('draws codes from the injected source, with the configured number of digits', async () => {
      const draws: number[] = [];
      registrar = make({
        randomInt: (max) => {
          draws.push(max);
          return 42;
        },
        limits: { codeDigits: 8 },
      });
      await registrar.prove({ csi: PHONE });
      expect(draws).toEqual([100_000_000]);
      expect(lastCode(fixture.outbox, PHONE)).toBe('00000042');
    });

    it('replaces a pending code when the CSI asks again', async () => {
      let next = 111_111;
      registrar = make({ randomInt: () => next++ });
      await registrar.prove({ csi: PHONE });
      await registrar.prove({ csi: PHONE });
      const key = RECIPIENT.publicKey;
      await refused(
        () => registrar.confirm({ csi: PHONE, code: '111111', key }),
        'ERR_CODE_INVALID',
      );
      const ok = await registrar.confirm({ csi: PHONE, code: '111 112', key });
      expect(attestsCsi(ok.attestation, PHONE)).toBe(true);
      // A code is used once.
      await refused(
        () => registrar.confirm({ csi: PHONE, code: '111112', key }),
        'ERR_CODE_INVALID',
      );
    });

    it('issues attestations valid for the configured time, from now', async () => {
      registrar = make({ limits: { attestationValiditySeconds: 30 * DAY } });
      const att = await attested();
      expect(att).toMatchObject({ nbf: T0, exp: T0 + 30 * DAY });
      expect(att.prover).toEqual(keyPairFromSeed(PROVER_SEED).publicKey);
    });

    it('refuses a key that is not 32 octets', async () => {
      await registrar.prove({ csi: PHONE });
      const error = await refused(
        () =>
          registrar.confirm({
            csi: PHONE,
            code: lastCode(fixture.outbox, PHONE),
            key: new Uint8Array(31),
          }),
        'ERR_BAD_REQUEST',
      );
      expect(error.detail).toBe('key');
    });
  });

  describe('channels', () => {
    it('sends to tel: and mailto: CSIs through their own channels', async () => {
      const tel = recordingChannel('webhook');
      const mailto = recordingChannel('smtp');
      registrar = make({ channels: { tel, mailto } });
      expect((await registrar.prove({ csi: '+442079460018' })).channel).toBe('webhook');
      expect((await registrar.prove({ csi: 'alice@example.com' })).channel).toBe('smtp');
      expect(tel.sent.map((m) => m.csi)).toEqual([PHONE]);
      expect(mailto.sent.map((m) => m.csi)).toEqual([EMAIL]);
      expect(tel.sent[0]?.expiresAt).toBe(T0 + 600);
    });

    it('refuses a CSI no channel serves', async () => {
      registrar = make({ channels: { mailto: recordingChannel('smtp') } });
      const error = await refusal(registrar.prove({ csi: PHONE }));
      expect(error).toMatchObject({ code: 'ERR_CHANNEL_UNAVAILABLE', status: 501 });
    });

    it('reports a failed delivery and discards the undelivered code', async () => {
      const tel = recordingChannel('webhook');
      tel.fail = true;
      registrar = make({ channels: { tel } });
      const error = await refusal(registrar.prove({ csi: PHONE }));
      expect(error).toMatchObject({ code: 'ERR_CHANNEL_FAILED', status: 502, detail: 'webhook' });
      const code = tel.sent[0]?.code ?? '';
      await refused(
        () => registrar.confirm({ csi: PHONE, code, key: RECIPIENT.publicKey }),
        'ERR_CODE_INVALID',
      );
    });
  });

  describe('mappings', () => {
    it('sets the MAP TTL to the time left when a mapping expires within five minutes', async () => {
      const att = await attested();
      await registrar.publishMapping(mappingOf({ att, iat: T0, exp: T0 + 100 }));
      expect(maps()[0]?.ttl).toBe(100);
      await registrar.publishMapping(mappingOf({ att, seq: 2, iat: T0, exp: T0 + DAY }));
      expect(maps()[0]?.ttl).toBe(MAX_MAP_TTL_SECONDS);
    });

    it('gives the RRset the smallest TTL of its mappings', async () => {
      const a = await attested(RECIPIENT);
      const b = await attested(OTHER_RECIPIENT);
      await registrar.publishMapping(mappingOf({ att: a, iat: T0, exp: T0 + 120 }));
      await registrar.publishMapping(
        mappingOf({ att: b, recipient: OTHER_RECIPIENT, iat: T0, exp: T0 + DAY }),
      );
      expect(maps().map((r) => r.ttl)).toEqual([120, 120]);
    });

    it('drops expired mappings when it rewrites the RRset', async () => {
      const a = await attested(RECIPIENT);
      const b = await attested(OTHER_RECIPIENT);
      await registrar.publishMapping(mappingOf({ att: a, iat: T0, exp: T0 + 100 }));
      fixture.clock.now = T0 + 200;
      await registrar.publishMapping(
        mappingOf({ att: b, recipient: OTHER_RECIPIENT, iat: fixture.clock.now }),
      );
      expect(maps().map((r) => decodeMapping(r.data as Uint8Array).key)).toEqual([
        OTHER_RECIPIENT.publicKey,
      ]);
    });

    it('accepts the very same mapping again without a change', async () => {
      const att = await attested();
      const bytes = mappingBytes({ att, iat: T0 });
      const first = await registrar.publishMapping({ csi: PHONE, mapping: bytes });
      const again = await registrar.publishMapping({ csi: PHONE, mapping: bytes });
      expect(again).toEqual(first);
    });

    it('lands every one of concurrent publications for one CSI', async () => {
      const keys = Array.from({ length: 8 }, (_, i) => keyPairFromSeed(seed(0x30 + i)));
      const results = await Promise.all(
        keys.map((key) =>
          registrar.publishMapping(
            mappingOf({ att: attest(PHONE, key, PROVER_SEED, T0), recipient: key, iat: T0 }),
          ),
        ),
      );
      // They share group commits, each of which steps the serial once: the last is served.
      const serials = results.map((r) => r.serial);
      expect(fixture.store.zoneInfo(PHONE_ZONE)?.serial).toBe(Math.max(...serials));
      expect(new Set(serials).size).toBeLessThanOrEqual(keys.length);
      expect(maps()).toHaveLength(keys.length);
    });

    it(`refuses an attestation valid for longer than ${MAX_ATTESTATION_LIFETIME_SECONDS} s`, async () => {
      const exp = T0 + MAX_ATTESTATION_LIFETIME_SECONDS + 1;
      const att = attest(PHONE, RECIPIENT, PROVER_SEED, T0, exp);
      const error = await refused(
        () => registrar.publishMapping(mappingOf({ att, iat: T0 })),
        'ERR_MAPPING_INVALID',
      );
      expect(error.detail).toBe('attestation-lifetime');
      const mapref = await refused(
        () => registrar.publishMapref(maprefBytes(att, 'msp.example', T0)),
        'ERR_MAPREF_INVALID',
      );
      expect(mapref.detail).toBe('attestation-lifetime');
      // At the bound it is taken.
      const longest = attest(PHONE, RECIPIENT, PROVER_SEED, T0, exp - 1);
      await registrar.publishMapping(mappingOf({ att: longest, iat: T0 }));
      expect(() =>
        make({ limits: { attestationValiditySeconds: MAX_ATTESTATION_LIFETIME_SECONDS + 1 } }),
      ).toThrow(RangeError);
    });

    it('refuses inside the store a prover that was removed after the registrar looked', async () => {
      // The registrar's early check reads a stale AUTHKEY RRset that still lists the prover;
      // the store, deciding inside its write, reads the one without it.
      const stale = fixture.store.readRRset(PHONE_ZONE, PHONE_ZONE, 'AUTHKEY');
      const base = fixture.store;
      const store = new Proxy(base, {
        get(target, property) {
          if (property === 'readRRset') {
            return (...args: Parameters<DiscoveryStore['readRRset']>) =>
              args[2] === 'AUTHKEY' ? stale : target.readRRset(...args);
          }
          const value: unknown = Reflect.get(target, property);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
      await fixture.store.apply(PHONE_ZONE, [
        {
          op: 'put',
          name: PHONE_ZONE,
          type: 'AUTHKEY',
          records: stale.filter(
            (rr) =>
              rr.type !== 'AUTHKEY' ||
              Buffer.compare(rr.data.publicKey, INDEPENDENT_PROVER.publicKey) !== 0,
          ),
        },
      ]);
      registrar = make({ store });
      const att = attest(PHONE, RECIPIENT, INDEPENDENT_PROVER.secretKey, T0);
      await refused(
        () => registrar.publishMapping(mappingOf({ att, iat: T0 })),
        'ERR_PROVER_NOT_AUTHORIZED',
      );
    });

    it(`holds at most ${MAX_MAPPINGS_PER_CSI} mappings per CSI`, async () => {
      const keys = Array.from({ length: MAX_MAPPINGS_PER_CSI + 1 }, (_, i) =>
        keyPairFromSeed(seed(0x40 + i)),
      );
      for (const [i, key] of keys.entries()) {
        const att = attest(PHONE, key, PROVER_SEED, T0);
        const bytes = mappingBytes({ att, recipient: key, iat: T0 });
        if (i < MAX_MAPPINGS_PER_CSI)
          await registrar.publishMapping({ csi: PHONE, mapping: bytes });
        else
          await refused(
            () => registrar.publishMapping({ csi: PHONE, mapping: bytes }),
            'ERR_TOO_MANY_MAPPINGS',
          );
      }
    });

    it.each([
      ['expired', { exp: T0 - 1, iat: T0 - DAY }],
      ['not-yet-valid', { iat: T0 + 3600 }],
    ] as const)('refuses a mapping that is %s', async (reason, times) => {
      const att = attest(PHONE, RECIPIENT, PROVER_SEED, T0 - 2 * DAY);
      const error = await refused(
        () => registrar.publishMapping(mappingOf({ att, ...times })),
        'ERR_MAPPING_INVALID',
      );
      expect(error.detail).toBe(reason);
    });

    it('refuses bytes that are not a mapping', async () => {
      const error = await refused(
        () => registrar.publishMapping({ csi: PHONE, mapping: new Uint8Array([0xa0]) }),
        'ERR_MAPPING_INVALID',
      );
      expect(error.detail).toBe('malformed');
    });

    it('refuses a mapping signed for a CSI that is not canonical', async () => {
      // The request's CSI is taken as typed and made canonical; the signatures cover the
      // spelling they were made over, so they do not verify for the canonical CSI.
      const csi = 'mailto:Alice@example.com';
      const att = attest(csi, RECIPIENT, PROVER_SEED, T0);
      const error = await refusal(registrar.publishMapping(mappingOf({ att, iat: T0 })));
      expect(error).toMatchObject({ code: 'ERR_MAPPING_INVALID', detail: 'bad-signature' });
    });

    it('takes the CSI of a publication as typed, and verifies for its canonical form', async () => {
      const att = await attested();
      const published = await registrar.publishMapping({
        csi: '+44 (0)20 7946 0018',
        mapping: mappingBytes({ att, iat: T0 }),
      });
      expect(published).toMatchObject({ zone: PHONE_ZONE, name: PHONE_NAME });
      const refusedCsi = await refusal(
        registrar.publishMapping({ csi: 'not a number', mapping: mappingBytes({ att, iat: T0 }) }),
      );
      expect(refusedCsi.code).toBe('ERR_CSI_INVALID');
    });

    it('refuses a mapping published for another CSI than it was signed for', async () => {
      const att = await attested();
      // A neighbour's number in the same zone, and an email address of another DP zone.
      for (const csi of ['tel:+442079460019', EMAIL]) {
        const error = await refused(
          () => registrar.publishMapping({ csi, mapping: mappingBytes({ att, iat: T0 }) }),
          'ERR_MAPPING_INVALID',
        );
        expect(error.detail).toBe('bad-signature');
      }
    });

    it('refuses a CSI of a sub-range delegated to another provider', async () => {
      const cut = '7.4.4.e164.mimi.arpa';
      await fixture.store.apply(PHONE_ZONE, [
        {
          op: 'put',
          name: cut,
          type: 'NS',
          records: [{ name: cut, type: 'NS', class: 'IN', ttl: 3600, data: 'ns.child.example' }],
        },
      ]);
      const csi = 'tel:+447700900123';
      const att = attest(csi, RECIPIENT, PROVER_SEED, T0);
      await refused(
        () => registrar.publishMapping(mappingOf({ att, iat: T0 })),
        'ERR_NOT_AUTHORITATIVE',
      );
    });

    it('refuses an attestation by a prover whose AUTHKEY has expired', async () => {
      const shortLived = keyPairFromSeed(seed(0x21));
      await fixture.store.addZone({
        origin: '1.e164.mimi.arpa',
        nameservers: ['ns1.dp.example'],
        mname: 'ns1.dp.example',
        rname: 'hostmaster.dp.example',
        authkeys: [{ role: 'prover', publicKey: shortLived.publicKey, notAfter: T0 + 10 }],
      });
      const csi = 'tel:+12025550100';
      const att = attest(csi, RECIPIENT, shortLived.secretKey, T0);
      await registrar.publishMapping(mappingOf({ att, iat: T0 }));
      fixture.clock.now = T0 + 10;
      const error = await refusal(
        registrar.publishMapping(mappingOf({ att, seq: 2, iat: T0 + 10 })),
      );
      expect(error.code).toBe('ERR_PROVER_NOT_AUTHORIZED');
    });

    it('does not take back a mapping after its removal', async () => {
      const att = await attested();
      const bytes = mappingBytes({ att, seq: 4, iat: T0 });
      await registrar.publishMapping({ csi: PHONE, mapping: bytes });
      await registrar.remove(removalBytes(PHONE, RECIPIENT, 4, T0));
      await refused(
        () => registrar.publishMapping({ csi: PHONE, mapping: bytes }),
        'ERR_STALE_SEQ',
      );
      await registrar.publishMapping(mappingOf({ att, seq: 5, iat: T0 }));
      expect(maps()).toHaveLength(1);
    });

    it('does not take back a mapping covered by a revocation', async () => {
      const att = await attested();
      const bytes = mappingBytes({ att, iat: T0 });
      await registrar.publishMapping({ csi: PHONE, mapping: bytes });
      fixture.clock.now = T0 + 60;
      await registrar.revoke(revocationBytes(PHONE, CSIP, T0 + 60, T0 + 60));
      await refused(() => registrar.publishMapping({ csi: PHONE, mapping: bytes }), 'ERR_REVOKED');
      // The next holder, attested after the revocation, publishes.
      const next = await attested(OTHER_RECIPIENT);
      await registrar.publishMapping(
        mappingOf({ att: next, recipient: OTHER_RECIPIENT, iat: T0 + 60 }),
      );
    });

    it('refuses a revocation of attestations made in the future', async () => {
      const error = await refused(
        () => registrar.revoke(revocationBytes(PHONE, CSIP, T0 + DAY, T0)),
        'ERR_REVOCATION_INVALID',
      );
      expect(error.detail).toBe('not-yet-valid');
    });
  });

  describe('MAPREF', () => {
    const TARGET = 'msp-dp.example.com.email.mimi.arpa';

    it('publishes targets on requests by an attested key, and withdraws them', async () => {
      const att = await attested();
      const first = await registrar.publishMapref(maprefBytes(att, TARGET, T0));
      expect(first).toMatchObject({ zone: PHONE_ZONE, name: PHONE_NAME });
      expect(maprefs()).toEqual([
        { name: PHONE_NAME, type: 'MAPREF', class: 'IN', ttl: MAPREF_TTL_SECONDS, data: TARGET },
      ]);
      await registrar.publishMapref(maprefBytes(att, 'other.example', T0 + 1));
      expect(
        maprefs()
          .map((r) => r.data)
          .sort(),
      ).toEqual(['msp-dp.example.com.email.mimi.arpa', 'other.example']);
      // The same target again changes nothing.
      const again = await registrar.publishMapref(maprefBytes(att, TARGET, T0 + 2));
      expect(again.serial).toBe(fixture.store.zoneInfo(PHONE_ZONE)?.serial);
      await registrar.publishMapref(maprefBytes(att, null, T0 + 3));
      expect(maprefs()).toEqual([]);
    });

    it('refuses a replayed, stale or foreign request', async () => {
      const att = await attested();
      const request = maprefBytes(att, TARGET, T0);
      await registrar.publishMapref(request);
      await refused(() => registrar.publishMapref(request), 'ERR_REPLAYED');
      fixture.clock.now = T0 + 301;
      const stale = await refused(() => registrar.publishMapref(request), 'ERR_MAPREF_INVALID');
      expect(stale.detail).toBe('expired');
      const foreign = attest(PHONE, STRANGER, STRANGER.secretKey, T0);
      await refused(
        () => registrar.publishMapref(maprefBytes(foreign, TARGET, T0 + 301, STRANGER)),
        'ERR_PROVER_NOT_AUTHORIZED',
      );
      await refused(
        () => registrar.publishMapref(maprefBytes(att, PHONE_NAME, T0 + 301)),
        'ERR_MAPREF_INVALID',
      );
    });

    it(`holds at most ${MAX_MAPREFS_PER_CSI} targets`, async () => {
      const att = await attested();
      for (let i = 0; i < MAX_MAPREFS_PER_CSI; i++) {
        await registrar.publishMapref(maprefBytes(att, `t${i}.example`, T0 + i));
      }
      await refused(
        () => registrar.publishMapref(maprefBytes(att, 'one-more.example', T0 + 20)),
        'ERR_TOO_MANY_MAPREFS',
      );
    });

    it('refuses a request by a key that a "new" mapping de-listed', async () => {
      const old = await attested(RECIPIENT);
      fixture.clock.now = T0 + 60;
      const fresh = await attested(OTHER_RECIPIENT);
      await registrar.publishMapping(
        mappingOf({ att: fresh, recipient: OTHER_RECIPIENT, iat: T0 + 60, new: true }),
      );
      await refused(
        () => registrar.publishMapref(maprefBytes(old, TARGET, T0 + 60)),
        'ERR_SUPERSEDED',
      );
    });

    it('is deleted with the last MAP, kept while another holder remains', async () => {
      const a = await attested(RECIPIENT);
      const b = await attested(OTHER_RECIPIENT);
      await registrar.publishMapping(mappingOf({ att: a, iat: T0 }));
      await registrar.publishMapping(mappingOf({ att: b, recipient: OTHER_RECIPIENT, iat: T0 }));
      await registrar.publishMapref(maprefBytes(a, TARGET, T0));
      await registrar.remove(removalBytes(PHONE, RECIPIENT, 1, T0));
      expect(maprefs()).toHaveLength(1);
      await registrar.remove(removalBytes(PHONE, OTHER_RECIPIENT, 1, T0));
      expect(maps()).toEqual([]);
      expect(maprefs()).toEqual([]);
    });

    it('is deleted by a revocation', async () => {
      const att = await attested();
      await registrar.publishMapref(maprefBytes(att, TARGET, T0));
      fixture.clock.now = T0 + 10;
      const result = await registrar.revoke(revocationBytes(PHONE, CSIP, T0 + 10, T0 + 10));
      expect(result.removed).toBe(0);
      expect(maprefs()).toEqual([]);
    });
  });

  describe('logs', () => {
    it('never put the client address and the CSI on one line', async () => {
      const lines: string[] = [];
      registrar = make({
        log: createLogger('authoritative:registration', {
          level: 'debug',
          write: (line) => lines.push(line),
        }),
        limits: { sendsPerCsiPerHour: 1 },
      });
      const client = '203.0.113.7';
      await registrar.prove({ csi: PHONE }, client);
      await refusal(registrar.prove({ csi: PHONE }, client));
      const code = lastCode(fixture.outbox, PHONE);
      await registrar.confirm({ csi: PHONE, code, key: RECIPIENT.publicKey }, client);
      expect(lines.length).toBeGreaterThan(0);
      for (const line of lines) {
        const both =
          line.includes(client) && (line.includes('442079460018') || line.includes(PHONE_NAME));
        expect(both, line).toBe(false);
      }
    });
  });
});
