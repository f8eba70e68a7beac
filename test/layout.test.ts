import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

// Design §2: dependencies point one way. Style: only one wrapper module imports dns-packet, and
// only one imports @noble/ed25519.
const ROOT = join(import.meta.dirname, '..');
const ALLOWED: Record<string, string[]> = {
  common: [],
  authoritative: ['common'],
  resolver: ['common'],
  root: ['common', 'authoritative'],
  cli: ['common', 'authoritative', 'root', 'resolver'],
};
const WRAPPERS: Record<string, string> = {
  'dns-packet': 'packages/common/src/wire.ts',
  '@noble/ed25519': 'packages/common/src/ed25519.ts',
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
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
