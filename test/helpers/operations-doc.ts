/**
 * Reading docs/operations.md against the code it documents: the key paths of a config schema
 * and the rows of a Markdown table, for the tests that check the doc's reference tables.
 */

/** The part of zod's definition the walk reads (zod 4: `schema._zod.def`). */
interface SchemaDef {
  type: string;
  shape?: Record<string, unknown>;
  innerType?: unknown;
  in?: unknown;
  element?: unknown;
  options?: unknown[];
  discriminator?: string;
}

const defOf = (schema: unknown): SchemaDef => (schema as { _zod: { def: SchemaDef } })._zod.def;

/**
 * Every key path of a zod schema, objects and their members: `listen`, `listen.udp`, …; the
 * members of a list of objects as the tables write them, `gateway.issuers[].name`; for a
 * discriminated union of objects (`store`: `{ kind: 'lmdb' }` or `{ kind: 'postgres', url, … }`),
 * the members of every alternative, each once.
 */
export function configKeyPaths(schema: unknown, prefix = ''): string[] {
  const def = defOf(schema);
  switch (def.type) {
    case 'pipe':
      return configKeyPaths(def.in, prefix);
    case 'default':
    case 'prefault':
    case 'optional':
    case 'nullable':
      return configKeyPaths(def.innerType, prefix);
    case 'object':
      return Object.entries(def.shape ?? {}).flatMap(([key, member]) => {
        const path = prefix === '' ? key : `${prefix}.${key}`;
        return [path, ...configKeyPaths(member, path)];
      });
    case 'array':
      return configKeyPaths(def.element, `${prefix}[]`);
    case 'union':
      // Only a discriminated union is a choice of objects whose members the table lists; another
      // (`true` or an object, as the resolver's `rootCopy`) stays one row.
      if (def.discriminator === undefined) return [];
      return [...new Set((def.options ?? []).flatMap((option) => configKeyPaths(option, prefix)))];
    default:
      return [];
  }
}

/** The rows of the first Markdown table in `text`, as cells, without header and rule. */
export function markdownTableRows(text: string): string[][] {
  const all = text.split('\n');
  const first = all.findIndex((line) => line.startsWith('|'));
  const end = all.findIndex((line, i) => i > first && !line.startsWith('|'));
  return all
    .slice(first, end < 0 ? undefined : end)
    .slice(2)
    .map((line) =>
      line
        .slice(1, -1)
        .split('|')
        .map((cell) => cell.trim()),
    );
}
