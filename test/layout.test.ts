import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

// Design §2: dependencies point one way. Style: only one wrapper module imports dns-packet, and
// only one imports @noble/ed25519.
const ROOT = join(import.meta.dirname, '..');
const ALLOWED: Record<string, string[]> = {
  common: [],
  authoritative: ['common'],
  resolver: ['common'],
  relay: ['common'],
  root: ['common', 'authoritative'],
  cli: ['common', 'authoritative', 'root', 'resolver', 'relay'],
};
const WRAPPERS: Record<string, string> = {
  'dns-packet': 'packages/common/src/protocol/wire.ts',
  '@noble/ed25519': 'packages/common/src/protocol/ed25519.ts',
};

function sourceFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((entry) => {
    if (entry === 'node_modules' || entry === 'dist' || entry.startsWith('.')) return [];
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)].map((m) => m[1] as string);
}

describe('repository layout', () => {
  for (const [pkg, allowed] of Object.entries(ALLOWED)) {
    it(`packages/${pkg} imports only ${allowed.length ? allowed.join(', ') : 'no other package'}`, () => {
      for (const file of sourceFiles(join(ROOT, 'packages', pkg, 'src'))) {
        for (const spec of importsOf(file)) {
          const m = /^@mimi-discovery\/([^/]+)(\/.*)?$/.exec(spec);
          if (!m) continue;
          expect(allowed, `${relative(ROOT, file)} imports ${spec}`).toContain(m[1]);
          expect(m[2], `${relative(ROOT, file)} deep-imports ${spec}`).toBeUndefined();
        }
      }
    });
  }

  // Tests and bench code are held to the same arrows as sources: no deep imports, and no
  // relative path into another package's sources.
  it("keeps tests, examples and the bench to packages' public names", () => {
    const dirs = [
      ...Object.keys(ALLOWED).map((pkg) => join(ROOT, 'packages', pkg, 'test')),
      ...['test', 'examples', 'bench'].map((dir) => join(ROOT, dir)),
    ];
    for (const dir of dirs) {
      for (const file of sourceFiles(dir)) {
        const own = /packages\/([^/]+)\//.exec(relative(ROOT, file))?.[1];
        for (const spec of importsOf(file)) {
          const where = `${relative(ROOT, file)} imports ${spec}`;
          expect(/^@mimi-discovery\/[^/]+\//.test(spec), where).toBe(false);
          if (!spec.startsWith('.')) continue;
          const target = relative(ROOT, resolve(dirname(file), spec));
          const pkg = /^packages\/([^/]+)\//.exec(target)?.[1];
          if (pkg !== undefined) expect(pkg, where).toBe(own);
        }
      }
    }
  });

  it('keeps dns-packet and @noble/ed25519 behind their single wrapper modules', () => {
    for (const pkg of Object.keys(ALLOWED)) {
      for (const file of sourceFiles(join(ROOT, 'packages', pkg, 'src'))) {
        for (const spec of importsOf(file)) {
          const wrapper = WRAPPERS[spec];
          if (wrapper) expect(relative(ROOT, file), `imports ${spec}`).toBe(wrapper);
        }
      }
    }
  });
});

/**
 * Node modules that open sockets, start timers or touch files: the protocol layer is pure and
 * imports none of them. `node:net` is allowed for its address predicates only.
 */
const IMPURE_MODULES = new Set([
  'node:dgram',
  'node:http',
  'node:http2',
  'node:tls',
  'node:fs',
  'node:fs/promises',
  'node:timers',
  'node:timers/promises',
  'node:worker_threads',
  'node:child_process',
  'undici',
  'prom-client',
  'lru-cache',
]);

describe('the protocol layer of common', () => {
  const protocol = join(ROOT, 'packages', 'common', 'src', 'protocol');

  it('imports nothing from the runtime layer and no module with sockets, timers or files', () => {
    for (const file of sourceFiles(protocol)) {
      const text = readFileSync(file, 'utf8');
      for (const spec of importsOf(file)) {
        const where = `${relative(ROOT, file)} imports ${spec}`;
        expect(
          resolve(dirname(file), spec).startsWith(protocol) || !spec.startsWith('.'),
          where,
        ).toBe(true);
        expect(IMPURE_MODULES.has(spec), where).toBe(false);
      }
      for (const m of text.matchAll(/import\s*\{([^}]*)\}\s*from\s*'node:net'/g)) {
        for (const name of (m[1] as string).split(',').map((n) => n.trim())) {
          expect(
            ['isIP', 'isIPv4', 'isIPv6'],
            `${relative(ROOT, file)} imports ${name} from node:net`,
          ).toContain(name);
        }
      }
      expect(text, `${relative(ROOT, file)} reads a clock or starts a timer`).not.toMatch(
        /\b(?:setTimeout|setInterval|setImmediate|Date\.now|performance\.now)\s*\(/,
      );
    }
  });
});

describe('time', () => {
  // One injected clock (common's `Clock`, in whole seconds): the servers built on the
  // authoritative package read the time through it, and only `systemClock` reads the system's.
  it.each(['authoritative', 'root'])('packages/%s reads the time only through its clock', (pkg) => {
    for (const file of sourceFiles(join(ROOT, 'packages', pkg, 'src'))) {
      expect(
        readFileSync(file, 'utf8'),
        `${relative(ROOT, file)} reads the system time`,
      ).not.toMatch(/\b(?:Date\.now|new Date)\s*\(\s*\)/);
    }
  });
});

describe('log lines', () => {
  // Style: one spelling for event names, kebab-case (`request-failed`), so that a log query
  // written for one server matches the others.
  it('name their events in kebab-case in every package', () => {
    for (const pkg of Object.keys(ALLOWED)) {
      for (const file of sourceFiles(join(ROOT, 'packages', pkg, 'src'))) {
        const text = readFileSync(file, 'utf8');
        for (const m of text.matchAll(/\blog\??\.(?:debug|info|warn|error)\(\s*'([^']*)'/g)) {
          expect(m[1], `${relative(ROOT, file)} logs the event '${m[1]}'`).toMatch(
            /^[a-z0-9]+(?:-[a-z0-9]+)*$/,
          );
        }
      }
    }
  });
});

/** The source file a relative import names, or undefined when it names none. */
function importedFile(from: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  const target = resolve(dirname(from), spec).replace(/\.js$/, '.ts');
  return target.endsWith('.ts') ? target : undefined;
}

/** Strongly connected components of more than one file, or one file importing itself (Tarjan). */
function importCycles(files: string[], importsOfFile = importsOf): string[][] {
  const edges = new Map<string, string[]>();
  for (const file of files) {
    const targets = importsOfFile(file).flatMap((spec) => importedFile(file, spec) ?? []);
    edges.set(file, [...new Set(targets)]);
  }
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next += 1;
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!edges.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v) as number, index.get(w) as number));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      for (;;) {
        const w = stack.pop() as string;
        onStack.delete(w);
        component.push(w);
        if (w === v) break;
      }
      if (component.length > 1 || (edges.get(v) ?? []).includes(v)) {
        cycles.push(component.map((f) => relative(ROOT, f)).sort());
      }
    }
  };
  for (const file of files) if (!index.has(file)) visit(file);
  return cycles;
}

describe('imports', () => {
  it('finds a cycle, and a file that imports itself', () => {
    const at = (name: string): string => join(ROOT, 'x', `${name}.ts`);
    const graph: Record<string, string[]> = {
      [at('a')]: ['./b.js'],
      [at('b')]: ['./c.js', 'node:net'],
      [at('c')]: ['./a.js'],
      [at('d')]: ['./a.js', './d.js'],
      [at('e')]: ['./a.js'],
    };
    const cycles = importCycles(Object.keys(graph), (file) => graph[file] ?? []);
    expect(cycles).toEqual([['x/a.ts', 'x/b.ts', 'x/c.ts'], ['x/d.ts']]);
  });

  it('form no cycle among the source files of any package, type imports included', () => {
    const files = Object.keys(ALLOWED).flatMap((pkg) =>
      sourceFiles(join(ROOT, 'packages', pkg, 'src')),
    );
    expect(importCycles(files)).toEqual([]);
  });
});

/**
 * SHA-256 of https://www.apache.org/licenses/LICENSE-2.0.txt, the Apache License 2.0 as the
 * Apache Software Foundation publishes it (with its appendix, unmodified).
 */
const APACHE_2_0_SHA256 = 'cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30';

interface PackageJson {
  license?: string;
  files?: string[];
  bin?: Record<string, string>;
}

function packageJson(dir: string): PackageJson {
  return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as PackageJson;
}

describe('packaging', () => {
  it('has the full Apache License 2.0 text that every package.json names', () => {
    const text = readFileSync(join(ROOT, 'LICENSE'));
    expect(createHash('sha256').update(text).digest('hex')).toBe(APACHE_2_0_SHA256);
    expect(packageJson(ROOT).license).toBe('Apache-2.0');
  });

  // npm packs a LICENSE at a package's root whatever its `files` list says.
  it.each(Object.keys(ALLOWED))('packages/%s names Apache-2.0 and ships its text', (pkg) => {
    const dir = join(ROOT, 'packages', pkg);
    expect(packageJson(dir).license).toBe('Apache-2.0');
    expect(readFileSync(join(dir, 'LICENSE'))).toEqual(readFileSync(join(ROOT, 'LICENSE')));
  });

  it('links the mimi-discovery bin from a committed, executable file that npm packs', () => {
    const dir = join(ROOT, 'packages', 'cli');
    const { bin, files } = packageJson(dir);
    expect(bin).toEqual({ 'mimi-discovery': './bin/mimi-discovery.js' });
    const path = join(dir, 'bin', 'mimi-discovery.js');
    expect(readFileSync(path, 'utf8')).toMatch(/^#!\/usr\/bin\/env node\n/);
    expect(statSync(path).mode & 0o111).toBe(0o111);
    expect(files).toContain('bin');
  });
});
