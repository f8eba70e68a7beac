import { describe, expect, it } from 'vitest';
import { rankMsps } from '@mimi-discovery/common';
import { rankInputs } from '../src/sender-view.js';
import {
  errorResult,
  resultJson,
  resultJsonText,
  resultText,
  type DiscoveryResult,
  type VerifiedMapping,
} from '../src/index.js';

const mapping = (extra: Partial<VerifiedMapping> = {}): VerifiedMapping => ({
  msps: [
    { provider: 'chat.example', tags: ['mls', 'e2ee'] },
    { provider: 'msg.example', tags: [], uri: 'https://msg.example/u/1?a="b"' },
  ],
  key: 'a'.repeat(43),
  seq: 7,
  iat: 1_767_225_600,
  exp: 1_769_817_600,
  new: false,
  prover: 'b'.repeat(43),
  zone: '4.4.e164.mimi.arpa',
  server: 'https://127.0.0.1:8443/dns-query',
  ...extra,
});

const sealedMapping = mapping({
  msps: [{ provider: 'chat.example', tags: ['personal', 'pref:2'] }],
  sealed: [{ kid: 'AAAAAAAAAAA', enc: 'e'.repeat(43), ct: 'c'.repeat(86) }],
  opened: [
    { audience: 'BBBBBBBBBBB', msps: [{ provider: 'wire.example', tags: ['business', 'pref:1'] }] },
  ],
});

const RESULTS: ReadonlyArray<[string, DiscoveryResult]> = [
  [
    'found',
    {
      csi: 'tel:+442079460018',
      status: 'found',
      msps: rankMsps(rankInputs([mapping()]), {}),
      mappings: [mapping()],
      ttl: 300,
    },
  ],
  [
    'found, sealed and opened boxes, unopened',
    {
      csi: 'tel:+442079460018',
      status: 'found',
      msps: rankMsps(rankInputs([sealedMapping]), {}),
      mappings: [sealedMapping],
      ttl: 300,
      unopened: 1,
    },
  ],
  [
    'found, two mappings, stale',
    {
      csi: 'tel:+442079460018',
      status: 'found',
      msps: rankMsps(rankInputs([mapping(), mapping({ new: true, seq: 1 })]), {}),
      mappings: [mapping(), mapping({ new: true, seq: 1 })],
      ttl: 30,
      stale: true,
    },
  ],
  [
    'empty',
    { csi: 'mailto:alice@example.com', status: 'empty', msps: [], mappings: [], ttl: 86_400 },
  ],
  ['none', { csi: 'tel:+442079460999', status: 'none', msps: [], mappings: [], ttl: 0 }],
  ['error', errorResult('not "a" number\n', 'invalid-csi', 'ERR_CSI_UNRECOGNIZED: not a CSI')],
  [
    'error, stale flag',
    { ...errorResult('tel:+442079460018', 'timeout', 'no result'), stale: true },
  ],
];

describe('result JSON', () => {
  it.each(RESULTS)('writes %s as JSON.stringify of its API fields', (_, result) => {
    expect(resultJsonText(result)).toBe(JSON.stringify(resultJson(result)));
    expect(JSON.parse(resultJsonText(result))).toEqual(resultJson(result));
  });

  it.each(RESULTS)('splits %s around its TTL, so another TTL can be put in', (_, result) => {
    const text = resultText(result);
    const later = { ...result, ttl: 17 };
    expect(`${text.head}17${text.tail}`).toBe(JSON.stringify(resultJson(later)));
    expect(resultJsonText(later, text)).toBe(JSON.stringify(resultJson(later)));
  });

  it('writes the API fields only, in the order of the API', () => {
    const extra = { ...RESULTS[0]![1], debug: 'internal' } as DiscoveryResult;
    expect(Object.keys(JSON.parse(resultJsonText(extra)) as object)).toEqual([
      'csi',
      'status',
      'msps',
      'mappings',
      'ttl',
    ]);
  });

  it('writes a ranked MSP, a mapping and an unopened count in the order of the API', () => {
    const result = RESULTS[1]![1];
    const json = JSON.parse(resultJsonText(result)) as {
      msps: Array<Record<string, unknown>>;
      mappings: Array<Record<string, unknown>>;
    };
    expect(Object.keys(json)).toEqual(['csi', 'status', 'msps', 'mappings', 'ttl', 'unopened']);
    expect(json.msps.map((m) => Object.keys(m))).toEqual([
      ['provider', 'tags', 'contexts', 'pref', 'sameMsp', 'key', 'zone', 'audience'],
      ['provider', 'tags', 'contexts', 'pref', 'sameMsp', 'key', 'zone'],
    ]);
    expect(Object.keys(json.mappings[0]!)).toEqual([
      'msps',
      'sealed',
      'opened',
      'key',
      'seq',
      'iat',
      'exp',
      'new',
      'prover',
      'zone',
      'server',
    ]);
  });
});
