import { readFileSync } from 'node:fs';
import { parseConfig, parseConfigText } from '@mimi-discovery/common';
import { describe, expect, it } from 'vitest';
import { configKeyPaths, markdownTableRows } from '../../../test/helpers/operations-doc.js';
import { relayConfigSchema } from '../src/index.js';

// The relay's part of docs/operations.md (§10) against the code: the reference table between
// `<!-- config-keys: relay:begin -->` and `…:end -->` lists exactly the keys of
// `relayConfigSchema` with the defaults the parser fills in, the example after
// `<!-- config-example: relay -->` parses, and the table after `<!-- metrics: relay -->` names
// exactly the metrics `metrics.ts` declares (with those of common's connection and query log
// declarations).

const doc = readFileSync(new URL('../../../docs/operations.md', import.meta.url), 'utf8');

function after(marker: string): string {
  const at = doc.indexOf(marker);
  if (at < 0) throw new Error(`docs/operations.md lacks ${marker}`);
  return doc.slice(at + marker.length);
}

function valueAt(value: unknown, path: string): unknown {
  return path
    .split('.')
    .reduce<unknown>((v, key) => (v as Record<string, unknown> | undefined)?.[key], value);
}

describe('docs/operations.md on the relay', () => {
  const table = new Map(
    markdownTableRows(after('<!-- config-keys: relay:begin -->')).map((cells) => [
      /^`([^`]+)`$/.exec(cells[0] ?? '')?.[1] ?? '',
      cells[2] ?? '',
    ]),
  );
  const keys = configKeyPaths(relayConfigSchema);

  it('lists exactly the keys of the schema', () => {
    expect(keys.length).toBeGreaterThan(20);
    expect([...table.keys()].sort()).toEqual([...keys].sort());
  });

  it('gives the defaults the parser fills in', () => {
    const minimal = {
      listen: { relay: 0 },
      tls: { cert: 'c', key: 'k' },
      gateways: { r: 'https://g/' },
    };
    const parsed = parseConfig<unknown>(relayConfigSchema, minimal);
    let compared = 0;
    for (const [key, cell] of table) {
      const literal = /^`([^`]+)`$/.exec(cell)?.[1];
      if (literal === undefined || key === 'gateways' || key === 'listen.relay') continue;
      expect({ key, value: valueAt(parsed, key) }).toEqual({ key, value: JSON.parse(literal) });
      compared++;
    }
    expect(compared).toBeGreaterThan(15);
  });

  it('has an example config that parses', () => {
    const block = /^\s*```json\n([\s\S]*?)\n```/.exec(after('<!-- config-example: relay -->'));
    expect(() => parseConfigText(block?.[1] ?? '', relayConfigSchema, 'example')).not.toThrow();
  });

  it('names exactly the metrics the relay declares', () => {
    const code = [
      '../src/relay/metrics.ts',
      '../../common/src/runtime/connection-limits.ts',
      '../../common/src/runtime/query-log.ts',
    ]
      .map((path) => readFileSync(new URL(path, import.meta.url), 'utf8'))
      .join('\n');
    const declared = [...code.matchAll(/\.(?:counter|gauge|histogram)(?:<[^>]*>)?\(\s*'(\w+)'/g)]
      .map((m) => `relay_${m[1]}`)
      .sort();
    const documented = markdownTableRows(after('<!-- metrics: relay -->'))
      .map((cells) => /^`(\w+)/.exec(cells[0] ?? '')?.[1] ?? '')
      .sort();
    expect(documented).toEqual(declared);
  });
});
