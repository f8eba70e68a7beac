import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfig, parseConfigText } from '@mimi-discovery/common';
import { dpConfigSchema } from '@mimi-discovery/authoritative';
import { resolverConfigSchema } from '@mimi-discovery/resolver';
import { configKeyPaths, markdownTableRows } from '../test/helpers/operations-doc.js';

/**
 * docs/operations.md against the code it documents: the config reference tables list exactly
 * the keys of `dpConfigSchema` (`@mimi-discovery/authoritative`) and `resolverConfigSchema`
 * (`@mimi-discovery/resolver`), each beside its server; their documented defaults are what
 * the parser fills in, the example config files parse, and the metric tables name exactly the
 * metrics the servers declare.
 *
 * The doc marks what is checked: a reference table sits between
 * `<!-- config-keys: dp:begin -->` and `<!-- config-keys: dp:end -->` (likewise `resolver`);
 * an example config is the ```json block right after `<!-- config-example: dp -->` (`root`,
 * `resolver`); a metric table follows `<!-- metrics: authoritative -->` (`resolver`).
 */

const doc = readFileSync(new URL('../docs/operations.md', import.meta.url), 'utf8');

type Schema = typeof dpConfigSchema | typeof resolverConfigSchema;

/** The text between two marker comments. */
function between(begin: string, end: string): string {
  const start = doc.indexOf(begin);
  const stop = doc.indexOf(end, start);
  if (start < 0 || stop < 0) throw new Error(`docs/operations.md lacks ${begin} … ${end}`);
  return doc.slice(start + begin.length, stop);
}

/** The reference table of a schema: key path → default cell. */
function referenceTable(name: 'dp' | 'resolver'): Map<string, string> {
  const rows = markdownTableRows(
    between(`<!-- config-keys: ${name}:begin -->`, `<!-- config-keys: ${name}:end -->`),
  );
  return new Map(
    rows.map((cells) => {
      const key = /^`([^`]+)`$/.exec(cells[0] ?? '');
      if (key?.[1] === undefined) throw new Error(`not a key cell: ${cells[0]}`);
      return [key[1], cells[2] ?? ''];
    }),
  );
}

/** The ```json block right after `<!-- config-example: name -->`. */
function exampleConfig(name: string): string {
  const marker = `<!-- config-example: ${name} -->`;
  const at = doc.indexOf(marker);
  if (at < 0) throw new Error(`docs/operations.md lacks ${marker}`);
  const block = /^\s*```json\n([\s\S]*?)\n```/.exec(doc.slice(at + marker.length));
  if (block?.[1] === undefined) throw new Error(`no json block after ${marker}`);
  return block[1];
}

function valueAt(value: unknown, path: string): unknown {
  return path
    .split('.')
    .reduce<unknown>((v, key) => (v as Record<string, unknown> | undefined)?.[key], value);
}

const schemas: ReadonlyArray<{
  name: 'dp' | 'resolver';
  schema: Schema;
  /** The smallest valid config; the keys it sets are not compared with documented defaults. */
  minimal: Record<string, unknown>;
  setByMinimal: readonly string[];
}> = [
  {
    name: 'dp',
    schema: dpConfigSchema,
    minimal: { role: 'dp', dataDir: '/srv/dp' },
    setByMinimal: ['role', 'dataDir'],
  },
  {
    name: 'resolver',
    schema: resolverConfigSchema,
    minimal: { rootHints: 'root-hints.json', trustAnchor: 'root.key', listen: { udp: 53 } },
    setByMinimal: ['rootHints', 'trustAnchor', 'listen', 'listen.udp'],
  },
];

describe('docs/operations.md', () => {
  describe.each(schemas)(
    'the $name config reference',
    ({ name, schema, minimal, setByMinimal }) => {
      const table = referenceTable(name);
      const keys = configKeyPaths(schema);

      it('lists every key of the schema', () => {
        expect(keys.length).toBeGreaterThan(10);
        expect(keys.filter((key) => !table.has(key))).toEqual([]);
      });

      it('lists no key the schema does not have', () => {
        expect([...table.keys()].filter((key) => !keys.includes(key))).toEqual([]);
      });

      it('gives the defaults the parser fills in', () => {
        const parsed = parseConfig<unknown>(schema, minimal);
        let compared = 0;
        for (const [key, cell] of table) {
          const literal = /^`([^`]+)`$/.exec(cell)?.[1];
          if (literal === undefined || setByMinimal.includes(key)) continue;
          // A default inside an optional section the minimal config leaves out (`gateway`) is
          // filled in only when the section is given.
          const parent = key.includes('.') ? key.slice(0, key.lastIndexOf('.')) : undefined;
          if (parent !== undefined && valueAt(parsed, parent) === undefined) continue;
          expect({ key, value: valueAt(parsed, key) }).toEqual({ key, value: JSON.parse(literal) });
          compared++;
        }
        expect(compared).toBeGreaterThan(5);
      });
    },
  );

  it.each([
    { name: 'dp', schema: dpConfigSchema },
    { name: 'root', schema: dpConfigSchema },
    { name: 'dp-postgres', schema: dpConfigSchema },
    { name: 'resolver', schema: resolverConfigSchema },
  ])('has an example $name config that parses', ({ name, schema }) => {
    const parsed = parseConfigText<unknown>(exampleConfig(name), schema, `${name} example`);
    if (name !== 'resolver') expect(valueAt(parsed, 'role')).toBe(name.split('-')[0]);
    if (name === 'dp-postgres') expect(valueAt(parsed, 'store.kind')).toBe('postgres');
  });

  // Both servers also declare the connection metrics of common's `declareConnectionMetrics`,
  // the answer cache's of `declareAnswerCacheMetrics` and the query log's of
  // `declareQueryLogMetrics`.
  const shared = [
    '../packages/common/src/runtime/connection-limits.ts',
    '../packages/common/src/runtime/answer-cache.ts',
    '../packages/common/src/runtime/query-log.ts',
  ];
  it.each([
    { name: 'authoritative', sources: ['../packages/authoritative/src/metrics.ts', ...shared] },
    { name: 'resolver', sources: ['../packages/resolver/src/metrics.ts', ...shared] },
  ])('names exactly the $name metrics the code declares', ({ name, sources }) => {
    const [own, ...common] = sources.map((source) =>
      readFileSync(new URL(source, import.meta.url), 'utf8'),
    );
    expect(own).toMatch(/declareConnectionMetrics\(/);
    expect(own).toMatch(/declareAnswerCacheMetrics\(/);
    expect(own).toMatch(/declareQueryLogMetrics\(/);
    const code = [own, ...common].join('\n');
    const declared = [...code.matchAll(/\.(?:counter|gauge|histogram)(?:<[^>]*>)?\(\s*'(\w+)'/g)]
      .map((m) => `${name}_${m[1]}`)
      .sort();
    const marker = `<!-- metrics: ${name} -->`;
    const documented = markdownTableRows(doc.slice(doc.indexOf(marker) + marker.length))
      .map((cells) => /^`(\w+)/.exec(cells[0] ?? '')?.[1] ?? cells[0])
      .sort();
    expect(declared.length).toBeGreaterThan(2);
    expect(documented).toEqual(declared);
  });
});
