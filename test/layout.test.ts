import { createHash } from 'node:crypto';
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
