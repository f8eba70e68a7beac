import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  audienceKeyFromSecret,
  createAttestation,
  decodeMapping,
  createMapping,
  createMaprefRequest,
  createCredentialRequest,
  issueSdJwtCredential,
  issueX509Credential,
  createMemoryZone,
  createRemoval,
  createRevocation,
  createZoneKey,
  csiToName,
  dsRecord,
  encodeAttestation,
  encodeMapping,
  encodeMaprefRequest,
  encodeCredentialRequest,
  encodeMessage,
  encodeMspEntries,
  encodeRdata,
  encodeRemoval,
  encodeRevocation,
  formatRecord,
  keyPairFromSeed,
  lookupZone,
  openSealed,
  parseCsi,
  parseRange,
  signingInput,
  signRRset,
  signZone,
  verifyMapping,
  type Message,
  type RecordOf,
  type ResourceRecord,
  record,
  responseFlags,
  sealedAad,
  sealMsps,
  SEALED_INFO,
  type Attestation,
  type Mapping,
  type MspEntry,
  type SealedBox,
} from '@mimi-discovery/common';

// Generates §7 of docs/protocol.md from fixed keys and checks that the document matches.
// To rewrite the section after an intended change: MIMI_REGENERATE_VECTORS=1 npx vitest run
// test/protocol-vectors.test.ts
const DOC = join(import.meta.dirname, '..', 'docs', 'protocol.md');
const BEGIN = '<!-- vectors:begin -->';
const END = '<!-- vectors:end -->';

const seed = (byte: number): Uint8Array => new Uint8Array(32).fill(byte);
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const T0 = 1_767_225_600; // 2026-01-01T00:00:00Z

function block(lines: string[]): string {
  return ['```', ...lines, '```'].join('\n');
}

/** Wraps long hex at 96 characters so the document stays readable. */
function wrapped(label: string, value: string): string[] {
  const chunks = value.match(/.{1,96}/g) ?? [''];
  return [`${label}:`, ...chunks.map((c) => `  ${c}`)];
}

async function generate(): Promise<string> {
  const recipient = keyPairFromSeed(seed(1));
  const prover = keyPairFromSeed(seed(2));
  const csip = keyPairFromSeed(seed(3));
  const out: string[] = [];

  out.push(
    'Keys are Ed25519 seeds (RFC 8032 private keys) of 32 equal octets: recipient `01…01`,',
    'prover `02…02`, CSIP `03…03`, zone key of `4.4.e164.mimi.arpa` `07…07`. Audience keys',
    '(X25519 secrets, §4 "Sealed mappings") are `05…05` and, rotated, `07…07`; the ephemeral',
    'secrets of their boxes `06…06` and `08…08`. Times: `T0` =',
    `${T0} (2026-01-01T00:00:00Z). Byte strings are hex.`,
    '',
    '### 7.1 Names',
    '',
  );
  const inputs = [
    '+44 (0)20 7946 0018',
    '0044 20 7946 0018',
    'Alice@Example.COM',
    'user@Bücher.de',
  ];
  const names: string[] = [];
  for (const input of inputs) {
    const csi = parseCsi(input);
    names.push(`${JSON.stringify(input)} → ${csi}`, `  ${csiToName(csi)}`);
  }
  for (const range of ['+44', '+1', '@example.com', 'com']) {
    names.push(`range ${range} → ${parseRange(range).zone}`);
  }
  out.push(block(names), '', '### 7.2 Signed objects', '');

  const csi = parseCsi('+442079460018');
  const att = createAttestation(
    { csi, key: recipient.publicKey, nbf: T0, exp: T0 + 365 * 86_400 },
    prover.secretKey,
  );
  const mapping = createMapping(
    {
      csi,
      msps: [
        { provider: 'chat.example', tags: ['primary'] },
        { provider: 'msg.example', tags: [], uri: 'im:alice@msg.example' },
      ],
      seq: 1,
      iat: T0,
      exp: T0 + 30 * 86_400,
      new: false,
      att,
    },
    recipient.secretKey,
  );
  const removal = createRemoval({ csi, seq: 2, iat: T0 + 86_400 }, recipient.secretKey);
  const revocation = createRevocation(
    { csi, before: T0 + 86_400, iat: T0 + 86_400 },
    csip.secretKey,
  );
  const mapref = createMaprefRequest(
    {
      csi,
      target: `${csiToName(csi).replace(/\.mimi\.arpa$/, '')}.chat.example.email.mimi.arpa`,
      iat: T0,
      att,
    },
    recipient.secretKey,
  );
  const credentialRequest = createCredentialRequest(
    { csi, att, format: 'x509', iat: T0 },
    recipient.secretKey,
  );
  const { sig: credSig, ...credUnsigned } = credentialRequest;
  const { sig: attSig, ...attUnsigned } = att;
  const { sig: refSig, ...refUnsigned } = mapref;
  const { sig: mapSig, ...mapUnsigned } = mapping;
  const { sig: remSig, ...remUnsigned } = removal;
  const { sig: revSig, ...revUnsigned } = revocation;
  // A Mapping and an Attestation do not carry their CSI: it is in the signing input only.
  const objects = [
    [
      'Attestation (prover 02…02, nbf T0, exp T0 + 365 days)',
      signingInput('attestation', attUnsigned, csi),
      attSig,
      encodeAttestation(att),
    ],
    [
      'Mapping (recipient 01…01, seq 1, iat T0, exp T0 + 30 days, two MSPs)',
      signingInput('mapping', mapUnsigned, csi),
      mapSig,
      encodeMapping(mapping),
    ],
    [
      'Removal (seq 2, iat T0 + 1 day)',
      signingInput('removal', remUnsigned),
      remSig,
      encodeRemoval(removal),
    ],
    [
      'Revocation (CSIP 03…03, before = iat = T0 + 1 day)',
      signingInput('revocation', revUnsigned),
      revSig,
      encodeRevocation(revocation),
    ],
    [
      'MapRef request (recipient 01…01, iat T0, target in an MSP-run zone)',
      signingInput('mapref', refUnsigned),
      refSig,
      encodeMaprefRequest(mapref),
    ],
    [
      'Credential request (recipient 01…01, format x509, iat T0)',
      signingInput('credential', credUnsigned),
      credSig,
      encodeCredentialRequest(credentialRequest),
    ],
  ] as const;
  for (const [title, input, sig, encoded] of objects) {
    if (title.startsWith('Removal')) out.push(...(await sealedVectors(csi, att)));
    const carried =
      title.startsWith('Attestation') || title.startsWith('Mapping')
        ? ' (signed, not encoded)'
        : '';
    out.push(
      `${title}, CSI \`${csi}\`${carried}:`,
      '',
      block([
        ...wrapped('signing input', hex(input)),
        ...wrapped('sig', hex(sig)),
        ...wrapped('encoded', hex(encoded)),
      ]),
      '',
    );
  }

  // Credentials ("Credentials" above) of the same attestation, issued by the prover 02…02 of
  // 4.4.e164.mimi.arpa whose AUTHKEY has notAfter T0 + 730 days.
  const issue = {
    zone: '4.4.e164.mimi.arpa',
    csi,
    attestation: att,
    prover: { secretKey: prover.secretKey, notAfter: T0 + 730 * 86_400 },
  };
  const x509 = await issueX509Credential(issue);
  const sdJwt = await issueSdJwtCredential(issue, (n) => new Uint8Array(n).fill(0x5a));
  out.push(
    'Credentials of that attestation (prover 02…02 of `4.4.e164.mimi.arpa`, its AUTHKEY',
    'notAfter T0 + 730 days). The prover certificate, then the X.509 credential:',
    '',
    block([...x509.issuer.trim().split('\n'), ...x509.credential.trim().split('\n')]),
    '',
    'The SD-JWT, with its one disclosure salt fixed to 16 octets `5a` (issued salts are random):',
    '',
    block(sdJwt.match(/.{1,96}/g) ?? []),
    '',
  );

  out.push('### 7.3 Records and DNSSEC', '');
  const origin = '4.4.e164.mimi.arpa';
  const zoneKey = createZoneKey(origin, { seed: seed(7) });
  const mapName = csiToName(csi);
  const validity = { inception: T0, expiration: T0 + 14 * 86_400 };
  const rr = <T extends ResourceRecord['type']>(
    name: string,
    type: T,
    data: RecordOf<T>['data'],
    ttl = 3600,
  ): ResourceRecord => record(name, type, data, ttl);
  const records: ResourceRecord[] = [
    rr(origin, 'SOA', {
      mname: 'ns1.dp.example',
      rname: 'hostmaster.dp.example',
      serial: 1,
      refresh: 3600,
      retry: 600,
      expire: 604800,
      minimum: 300,
    }),
    rr(origin, 'NS', 'ns1.dp.example'),
    rr(origin, 'AUTHKEY', {
      role: 'prover',
      algorithm: 15,
      notAfter: T0 + 365 * 86_400,
      publicKey: prover.publicKey,
    }),
    rr(mapName, 'MAP', encodeMapping(mapping), 300),
    rr(mapName, 'MAPREF', 'msp-dp.example.com.email.mimi.arpa', 300),
    rr('_dns.ns1.7.4.4.e164.mimi.arpa', 'SVCB', {
      priority: 1,
      target: 'ns1.7.4.4.e164.mimi.arpa',
      params: { alpn: ['h2'], port: 8443, dohpath: '/dns-query{?dns}' },
    }),
  ];
  // RFC 3597 generic lines (`\\# len hex`) already show the RDATA; others get it below.
  const show = (r: ResourceRecord): string[] => {
    const text = formatRecord(r);
    return text.includes('\\#') ? [text] : [text, ...wrapped('  rdata', hex(encodeRdata(r)))];
  };
  const lines: string[] = [];
  for (const r of [...records.slice(2, 3), ...records.slice(4)]) lines.push(...show(r));
  lines.push(...show(dsRecord(zoneKey, 3600)));
  lines.push(`key tag ${zoneKey.keyTag}`);
  const mapRRset = records.filter((r) => r.type === 'MAP');
  lines.push(...show(signRRset(mapRRset, zoneKey, validity)));
  out.push(block(lines), '');

  out.push('### 7.4 Lookup responses', '');
  const zone = createMemoryZone(origin, signZone(origin, records, zoneKey, validity));
  const sign = (rrset: readonly ResourceRecord[]): RecordOf<'RRSIG'> =>
    signRRset([...rrset], zoneKey, validity);
  const responses: string[] = [];
  for (const [name, type] of [
    [mapName, 'MAP'],
    ['1.1.1.1.6.4.9.7.0.2.4.4.e164.mimi.arpa', 'MAP'],
  ] as const) {
    const outcome = lookupZone(zone, { name, type, class: 'IN' }, { dnssecOk: true, sign });
    if (outcome.kind === 'refused') throw new Error('unexpected refusal');
    const response: Message = {
      id: 0,
      flags: responseFlags({ aa: true }),
      rcode: 'NOERROR',
      questions: [{ name, type, class: 'IN' }],
      answers: outcome.answers,
      authorities: outcome.authorities,
      additionals: outcome.additionals,
      edns: { udpPayloadSize: 1232, extendedRcode: 0, version: 0, dnssecOk: true, options: [] },
    };
    const sections = [outcome.answers, outcome.authorities, outcome.additionals].map((records) =>
      records.map((r) => (r.type === 'RRSIG' ? `RRSIG(${r.data.typeCovered})` : r.type)).join(' '),
    );
    responses.push(
      `${name} ${type} → ${outcome.kind}`,
      `  answer: ${sections[0] || '-'}; authority: ${sections[1] || '-'}; additional: ${sections[2] || '-'}`,
    );
    responses.push(...wrapped('  message', hex(encodeMessage(response))), '');
  }
  out.push(block(responses.slice(0, -1)));
  return out.join('\n');
}

/**
 * The sealed-mapping vectors of §7.2: a box to audience key 05…05 with ephemeral secret 06…06,
 * the mapping that carries it, then a rotation to audience key 07…07 (ephemeral 08…08): the
 * hand-over mapping with both boxes.
 */
async function sealedVectors(csi: string, att: Attestation): Promise<string[]> {
  const recipient = keyPairFromSeed(seed(1));
  const entries: MspEntry[] = [
    { provider: 'wire.example', tags: ['business', 'pref:1'] },
    { provider: 'chat.example', tags: ['ctx:soccer'] },
  ];
  const audience = await audienceKeyFromSecret(seed(5));
  const rotated = await audienceKeyFromSecret(seed(7));
  const box = await sealMsps(csi, recipient.publicKey, entries, audience, {
    ephemeralSecret: seed(6),
  });
  const newBox = await sealMsps(csi, recipient.publicKey, entries, rotated, {
    ephemeralSecret: seed(8),
  });
  const mappingOf = (seq: number, sealed: readonly SealedBox[]): Mapping =>
    createMapping(
      { csi, msps: [], sealed, seq, iat: T0, exp: T0 + 30 * 86_400, new: false, att },
      recipient.secretKey,
    );
  const sealed = mappingOf(2, [box]);
  const handOver = mappingOf(3, [box, newBox]);
  const { sig: sealedSig, ...sealedUnsigned } = sealed;
  const encodedEntries = encodeMspEntries(entries);
  const out: string[] = [
    `Sealed mapping, CSI \`${csi}\` (recipient 01…01, seq 2, iat T0, exp T0 + 30 days, no MSP`,
    'in clear, one box): the entries below sealed to audience key `05…05` with ephemeral secret',
    `\`06…06\` (HPKE base mode, info \`${SEALED_INFO}\`, aad as in §4 "Sealed mappings"); the`,
    `plaintext is the 2-octet length, the entries and zeros to ${box.ct.length - 16} octets:`,
    '',
    block([
      ...wrapped('audience public key', hex(audience.publicKey)),
      ...wrapped('kid', hex(audience.kid)),
      'entries:',
      ...entries.map((e) => `  ${JSON.stringify(e)}`),
      ...wrapped('entries, CBOR', hex(encodedEntries)),
      ...wrapped('aad', hex(sealedAad(csi, recipient.publicKey))),
      ...wrapped('enc', hex(box.enc)),
      ...wrapped('ct', hex(box.ct)),
      ...wrapped('signing input', hex(signingInput('mapping', sealedUnsigned, csi))),
      ...wrapped('sig', hex(sealedSig)),
      ...wrapped('encoded', hex(encodeMapping(sealed))),
    ]),
    '',
    'Rotated audience key `07…07` (ephemeral secret `08…08`, same entries), and the hand-over',
    'mapping (seq 3) that carries the old box and the new one; the next mapping (seq 4) carries',
    'the new box only:',
    '',
    block([
      ...wrapped('audience public key', hex(rotated.publicKey)),
      ...wrapped('kid', hex(rotated.kid)),
      ...wrapped('enc', hex(newBox.enc)),
      ...wrapped('ct', hex(newBox.ct)),
      ...wrapped('sig', hex(handOver.sig)),
      ...wrapped('encoded', hex(encodeMapping(handOver))),
    ]),
    '',
  ];
  return out;
}

describe('docs/protocol.md test vectors', () => {
  it('match what the code produces from the fixed keys', async () => {
    const doc = readFileSync(DOC, 'utf8');
    const start = doc.indexOf(BEGIN);
    const end = doc.indexOf(END);
    expect(start, 'vector markers in docs/protocol.md').toBeGreaterThan(0);
    const current = doc.slice(start + BEGIN.length, end).trim();
    const generated = await generate();
    if (process.env['MIMI_REGENERATE_VECTORS'] === '1') {
      writeFileSync(
        DOC,
        `${doc.slice(0, start + BEGIN.length)}\n\n${generated}\n\n${doc.slice(end)}`,
      );
      return;
    }
    expect(current).toBe(generated);
  });

  it('hold sealed mappings that verify and open with their audience keys only', async () => {
    const doc = readFileSync(DOC, 'utf8');
    const csi = 'tel:+442079460018';
    /** The hex under `label:` in the first block after `heading`, as the document shows it. */
    const hexAfter = (heading: string, label: string): Uint8Array => {
      const from = doc.indexOf(heading);
      expect(from, heading).toBeGreaterThan(0);
      const lines = doc.slice(doc.indexOf(`\n${label}:\n`, from) + label.length + 3).split('\n');
      const end = lines.findIndex((line) => !line.startsWith('  '));
      return new Uint8Array(Buffer.from(lines.slice(0, end).join('').replace(/\s/g, ''), 'hex'));
    };
    const sealedBytes = hexAfter('Sealed mapping, CSI', 'encoded');
    const handOverBytes = hexAfter('Rotated audience key', 'encoded');
    const [oldKey, newKey] = await Promise.all([
      audienceKeyFromSecret(seed(5)),
      audienceKeyFromSecret(seed(7)),
    ]);
    const entries = [
      { provider: 'wire.example', tags: ['business', 'pref:1'] },
      { provider: 'chat.example', tags: ['ctx:soccer'] },
    ];
    for (const [bytes, keys] of [
      [sealedBytes, [oldKey]],
      [handOverBytes, [oldKey, newKey]],
    ] as const) {
      expect(verifyMapping(bytes, { csi, now: T0 + 86_400 }).kind).toBe('verified');
      const mapping = decodeMapping(bytes);
      expect(mapping.msps).toEqual([]);
      expect(mapping.sealed?.map((b) => hex(b.kid))).toEqual(keys.map((k) => hex(k.kid)));
      for (const [i, box] of (mapping.sealed ?? []).entries()) {
        expect(await openSealed(csi, mapping.key, box, keys[i]!)).toEqual(entries);
      }
    }
    const [oldBox] = decodeMapping(sealedBytes).sealed ?? [];
    await expect(
      openSealed(csi, keyPairFromSeed(seed(1)).publicKey, oldBox!, newKey),
    ).rejects.toMatchObject({ code: 'ERR_SEALED_KID' });
  });
});
