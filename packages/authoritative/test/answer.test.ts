import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  decodeMessage,
  encodeMessage,
  queryUdp,
  record,
  startDnsServer,
  verifyRRset,
  type Message,
  type Question,
  type RecordOf,
  type ResourceRecord,
  type RRType,
} from '@mimi-discovery/common';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createAnswerer,
  createMemoryStore,
  openLmdbStore,
  type DiscoveryStore,
} from '../src/index.js';
import {
  CHILD,
  NUMBER,
  ORIGIN,
  PROVER_SEED,
  delegation,
  fakeClock,
  mapRecord,
  putMap,
  zoneInit,
  type FakeClock,
} from './store-battery.js';

const root = mkdtempSync(join(tmpdir(), 'mimi-answer-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;

const CONTEXT = { transport: 'udp', remoteAddress: '127.0.0.1' } as const;

interface QueryOptions {
  dnssecOk?: boolean;
  compactOk?: boolean;
  edns?: boolean;
  class?: Question['class'];
}

function query(name: string, type: Question['type'], options: QueryOptions = {}): Message {
  const message: Message = {
    id: 4242,
    flags: {
      qr: false,
      opcode: 0,
      aa: false,
      tc: false,
      rd: true,
      ra: false,
      z: false,
      ad: false,
      cd: false,
    },
    rcode: 'NOERROR',
    questions: [{ name, type, class: options.class ?? 'IN' }],
    answers: [],
    authorities: [],
    additionals: [],
  };
  if (options.edns !== false) {
    message.edns = {
      udpPayloadSize: 4096,
      extendedRcode: 0,
      version: 0,
      dnssecOk: options.dnssecOk ?? true,
      ...(options.compactOk === true ? { compactOk: true } : {}),
      options: [],
    };
  }
  return message;
}

const ofType = (records: readonly ResourceRecord[], type: RRType): ResourceRecord[] =>
  records.filter((rr) => rr.type === type);

const rrsigsFor = (records: readonly ResourceRecord[], covered: RRType): RecordOf<'RRSIG'>[] =>
  records.filter(
    (rr): rr is RecordOf<'RRSIG'> => rr.type === 'RRSIG' && rr.data.typeCovered === covered,
  );

interface Setup {
  store: DiscoveryStore;
  clock: FakeClock;
  ask: (q: Message) => Promise<Message>;
  /** Checks that `covered` in `section` has an RRSIG that verifies against the zone's DNSKEY. */
  expectSigned: (section: readonly ResourceRecord[], covered: RRType, origin?: string) => void;
}

const stores: Array<[string, (now: () => number) => Promise<DiscoveryStore>]> = [
  ['memory store', async (now) => createMemoryStore({ now, proverSeed: PROVER_SEED })],
  [
    'LMDB store',
    async (now) =>
      openLmdbStore({ dataDir: join(root, `store-${++counter}`), now, proverSeed: PROVER_SEED }),
  ],
];

describe.each(stores)('answering from the %s', (_name, openStore) => {
  const setup = async (): Promise<Setup> => {
    const clock = fakeClock();
    const store = await openStore(clock.now);
    await store.addZone(zoneInit());
    const handler = createAnswerer(store, { now: clock.now });
    const ask = async (q: Message): Promise<Message> => {
      const response = await handler(q, CONTEXT);
      // Every response must survive the wire.
      return decodeMessage(encodeMessage(response));
    };
    const expectSigned = (
      section: readonly ResourceRecord[],
      covered: RRType,
      origin = ORIGIN,
    ): void => {
      const rrset = ofType(section, covered);
      const [rrsig] = rrsigsFor(section, covered);
      expect(rrset.length, `${covered} records`).toBeGreaterThan(0);
      expect(rrsig, `RRSIG over ${covered}`).toBeDefined();
      const dnskeys = store.readRRset(origin, origin, 'DNSKEY');
      expect(verifyRRset(rrset, rrsig as RecordOf<'RRSIG'>, dnskeys, clock.now())).toEqual({
        kind: 'verified',
      });
    };
    return { store, clock, ask, expectSigned };
  };

  it('answers a published MAP authoritatively with its signature', async () => {
    const { store, ask, expectSigned } = await setup();
    await store.apply(ORIGIN, [putMap(NUMBER, 4)]);
    const response = await ask(query(NUMBER, 'MAP'));
    expect(response.id).toBe(4242);
    expect(response.rcode).toBe('NOERROR');
    expect(response.flags).toMatchObject({ qr: true, aa: true, rd: true, ra: false });
    expect(ofType(response.answers, 'MAP')).toEqual([mapRecord(NUMBER, 4)]);
    expectSigned(response.answers, 'MAP');
    expect(response.edns).toMatchObject({ udpPayloadSize: 1232, dnssecOk: true, version: 0 });
    expect(response.edns?.compactOk).toBeUndefined();
    await store.close();
  });

  it('leaves out signatures without DO and EDNS without EDNS in the query', async () => {
    const { store, ask } = await setup();
    await store.apply(ORIGIN, [putMap(NUMBER)]);
    const noDo = await ask(query(NUMBER, 'MAP', { dnssecOk: false }));
    expect(noDo.answers.map((rr) => rr.type)).toEqual(['MAP']);
    expect(noDo.edns?.dnssecOk).toBe(false);
    const plain = await ask(query(NUMBER, 'MAP', { edns: false }));
    expect(plain.answers.map((rr) => rr.type)).toEqual(['MAP']);
    expect(plain.edns).toBeUndefined();
    await store.close();
  });

  it('answers DNSKEY, SOA and AUTHKEY at the apex, each verifiable', async () => {
    const { store, ask, expectSigned } = await setup();
    for (const type of ['DNSKEY', 'SOA', 'AUTHKEY', 'NS'] as const) {
      const response = await ask(query(ORIGIN, type));
      expect(response.flags.aa).toBe(true);
      expectSigned(response.answers, type);
    }
    await store.close();
  });

  it('refers a name below a sub-delegation to the child, with NS, signed DS, glue and the DoH endpoint', async () => {
    const { store, ask, expectSigned } = await setup();
    await store.apply(ORIGIN, delegation(CHILD));
    const response = await ask(query(`5.3.${CHILD}`, 'MAP'));
    expect(response.rcode).toBe('NOERROR');
    expect(response.flags.aa).toBe(false);
    expect(response.answers).toEqual([]);
    expect(ofType(response.authorities, 'NS').map((rr) => rr.data)).toEqual([`ns1.${CHILD}`]);
    expect(rrsigsFor(response.authorities, 'NS')).toEqual([]);
    expectSigned(response.authorities, 'DS');
    expect(ofType(response.additionals, 'A')).toEqual([
      record(`ns1.${CHILD}`, 'A', '192.0.2.7', 3600),
    ]);
    expect(ofType(response.additionals, 'SVCB').map((rr) => rr.name)).toEqual([
      `_dns.ns1.${CHILD}`,
    ]);

    // The DS itself is the parent's to answer (RFC 4035 §3.1.4.1).
    const ds = await ask(query(CHILD, 'DS'));
    expect(ds.flags.aa).toBe(true);
    expectSigned(ds.answers, 'DS');
    await store.close();
  });

  it('answers the DS of a child zone it also holds from the parent zone', async () => {
    const { store, ask, expectSigned } = await setup();
    await store.addZone(zoneInit(CHILD, { keySeed: new Uint8Array(32).fill(8) }));
    await store.apply(ORIGIN, delegation(CHILD));
    const ds = await ask(query(CHILD, 'DS'));
    expect(ds.flags.aa).toBe(true);
    expectSigned(ds.answers, 'DS', ORIGIN);
    const soa = await ask(query(CHILD, 'SOA'));
    expectSigned(soa.answers, 'SOA', CHILD);
    await store.close();
  });

  it('answers a name without the type asked for with a signed compact NODATA', async () => {
    const { store, ask, expectSigned } = await setup();
    await store.apply(ORIGIN, [putMap(NUMBER)]);
    const response = await ask(query(NUMBER, 'MAPREF'));
    expect(response.rcode).toBe('NOERROR');
    expect(response.flags.aa).toBe(true);
    expect(response.answers).toEqual([]);
    expectSigned(response.authorities, 'SOA');
    expectSigned(response.authorities, 'NSEC');
    const nsec = ofType(response.authorities, 'NSEC')[0] as RecordOf<'NSEC'>;
    expect(nsec.name).toBe(NUMBER);
    expect(nsec.data.types).toEqual(['RRSIG', 'NSEC', 'MAP']);

    // An empty non-terminal on the way to the MAP owner exists too.
    const ent = await ask(query(`2.${ORIGIN}`, 'MAP'));
    expect(ent.rcode).toBe('NOERROR');
    expect((ofType(ent.authorities, 'NSEC')[0] as RecordOf<'NSEC'>).data.types).toEqual([
      'RRSIG',
      'NSEC',
    ]);
    await store.close();
  });

  it('denies a name that does not exist with NOERROR, or NXDOMAIN when the query sets CO', async () => {
    const { store, ask, clock, expectSigned } = await setup();
    const absent = `1.1.1.1.6.4.9.7.0.2.${ORIGIN}`;
    const response = await ask(query(absent, 'MAP'));
    expect(response.rcode).toBe('NOERROR');
    expect(response.flags.aa).toBe(true);
    expectSigned(response.authorities, 'NSEC');
    expectSigned(response.authorities, 'SOA');
    const nsec = ofType(response.authorities, 'NSEC')[0] as RecordOf<'NSEC'>;
    expect(nsec.data.types).toEqual(['RRSIG', 'NSEC', 'TYPE128']);
    const rrsig = rrsigsFor(response.authorities, 'NSEC')[0] as RecordOf<'RRSIG'>;
    expect(rrsig.data.inception).toBe(clock.now() - 3600);
    expect(rrsig.data.expiration).toBe(clock.now() + 86400);

    const compact = await ask(query(absent, 'MAP', { compactOk: true }));
    expect(compact.rcode).toBe('NXDOMAIN');
    expect(compact.edns?.compactOk).toBe(true);
    expect(compact.flags.aa).toBe(true);
    await store.close();
  });

  it('reuses a signed denial while it is fresh and signs it anew later', async () => {
    const { store, ask, clock } = await setup();
    const absent = `9.9.${ORIGIN}`;
    const signatureOf = async (): Promise<RecordOf<'RRSIG'>> =>
      rrsigsFor((await ask(query(absent, 'MAP'))).authorities, 'NSEC')[0] as RecordOf<'RRSIG'>;
    const first = await signatureOf();
    clock.advance(3600);
    expect(await signatureOf()).toEqual(first);
    clock.advance(12 * 3600);
    const later = await signatureOf();
    expect(later.data.expiration).toBe(clock.now() + 86400);
    await store.close();
  });

  it('signs a denial with every current signer during a key switch, each RRSIG verifying', async () => {
    const { store, ask, clock } = await setup();
    const [old] = store.keys.zoneKeys(ORIGIN);
    const now = clock.now();
    const added = await store.keys.addZoneKey(ORIGIN, { created: now, publish: now, active: now });
    await store.refreshKeys(ORIGIN);
    const response = await ask(query(`9.9.${ORIGIN}`, 'MAP'));
    const rrsigs = rrsigsFor(response.authorities, 'NSEC');
    expect(rrsigs.map((rr) => rr.data.keyTag).sort()).toEqual([old?.keyTag, added.keyTag].sort());
    const nsec = response.authorities.filter((rr) => rr.type === 'NSEC');
    const dnskeys = store.readRRset(ORIGIN, ORIGIN, 'DNSKEY') as RecordOf<'DNSKEY'>[];
    for (const rrsig of rrsigs) {
      expect(verifyRRset(nsec, rrsig, dnskeys, clock.now()).kind).toBe('verified');
    }
    await store.close();
  });

  it('refuses names outside its zones and classes other than IN, without AA', async () => {
    const { store, ask } = await setup();
    for (const q of [
      query('example.com', 'A'),
      query('e164.mimi.arpa', 'NS'),
      query(NUMBER, 'MAP', { class: 'CH' }),
      query(ORIGIN, 'AXFR'),
    ]) {
      const response = await ask(q);
      expect(response.rcode).toBe('REFUSED');
      expect(response.flags.aa).toBe(false);
      expect(response.answers).toEqual([]);
      expect(response.questions).toEqual(q.questions);
    }
    await store.close();
  });

  it('shows the SOA serial growing with every apply', async () => {
    const { store, ask } = await setup();
    const serial = async (): Promise<number> =>
      ((await ask(query(ORIGIN, 'SOA'))).answers.find((rr) => rr.type === 'SOA') as RecordOf<'SOA'>)
        .data.serial;
    expect(await serial()).toBe(1);
    await store.apply(ORIGIN, [putMap(NUMBER)]);
    expect(await serial()).toBe(2);
    await store.apply(ORIGIN, [putMap(`9.${ORIGIN}`), putMap(`8.${ORIGIN}`)]);
    expect(await serial()).toBe(3);
    await store.close();
  });

  it('stops answering a MAP once it is deleted', async () => {
    const { store, ask } = await setup();
    await store.apply(ORIGIN, [putMap(NUMBER)]);
    expect((await ask(query(NUMBER, 'MAP'))).answers.length).toBe(2);
    await store.apply(ORIGIN, [{ op: 'delete', name: NUMBER, type: 'MAP' }]);
    const response = await ask(query(NUMBER, 'MAP', { compactOk: true }));
    expect(response.answers).toEqual([]);
    expect(response.rcode).toBe('NXDOMAIN');
    await store.close();
  });
});

describe('answering faults', () => {
  it('answers SERVFAIL instead of throwing when the store fails', async () => {
    const store = createMemoryStore({ proverSeed: PROVER_SEED });
    await store.addZone(zoneInit());
    const broken: DiscoveryStore = {
      ...store,
      listZones: () => store.listZones(),
      findZone: (name) => store.findZone(name),
      zoneKey: (origin) => store.zoneKey(origin),
      zoneView: () => {
        throw new Error('disk on fire');
      },
    };
    const lines: string[] = [];
    const handler = createAnswerer(broken, {
      log: {
        namespace: 'test',
        debug: () => undefined,
        info: () => undefined,
        warn: () => undefined,
        error: (event) => lines.push(event),
        child: () => {
          throw new Error('unused');
        },
      },
    });
    const response = await handler(query(NUMBER, 'MAP'), CONTEXT);
    expect(response.rcode).toBe('SERVFAIL');
    expect(lines).toEqual(['answer-failed']);
  });

  // The answerer is only ever given queries that passed the listeners' checks (common's
  // `answerQuery`): served behind a real listener, a DP turns the others away there.
  it('answers FORMERR, NOTIMP and BADVERS to queries the server turns away before the answerer', async () => {
    const store = createMemoryStore({ proverSeed: PROVER_SEED });
    await store.addZone(zoneInit());
    const answerer = createAnswerer(store);
    let answered = 0;
    const server = await startDnsServer({ host: '127.0.0.1', udp: { port: 0 } }, (q, context) => {
      answered++;
      return answerer(q, context);
    });
    const port = server.udp?.port as number;
    const ask = (q: Message): Promise<Message> => queryUdp({ host: '127.0.0.1', port }, q);
    try {
      const two = query(NUMBER, 'MAP');
      two.questions.push({ name: ORIGIN, type: 'SOA', class: 'IN' });
      expect((await ask(two)).rcode).toBe('FORMERR');
      const notify = query(ORIGIN, 'SOA');
      notify.flags.opcode = 4;
      expect((await ask(notify)).rcode).toBe('NOTIMP');
      const v1 = query(ORIGIN, 'SOA');
      if (v1.edns !== undefined) v1.edns.version = 1;
      const badvers = await ask(v1);
      expect(badvers.rcode).toBe('BADVERS');
      expect(decodeMessage(encodeMessage(badvers)).rcode).toBe('BADVERS');
      expect(answered).toBe(0);
      // A well-formed query on the same listener reaches the answerer.
      expect((await ask(query(ORIGIN, 'SOA'))).rcode).toBe('NOERROR');
      expect(answered).toBe(1);
    } finally {
      await server.close();
    }
  });
});
