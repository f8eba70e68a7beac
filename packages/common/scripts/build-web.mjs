// Builds the browser pages the servers ship: for each package with `web/main.ts`, the page's
// script bundled for browsers (esbuild) into `dist/web/main.js`, and the page's static files
// (`web/*.html`, `*.css`, `*.svg`, `*.png`, `*.ico`) copied beside it. A server serves that
// directory from memory (`loadStaticSite` in packages/common/src/runtime/static-site.ts).
//
// The bundle is for browsers only: an import of a `node:` module fails the build, so nothing
// that needs a server runtime can slip into a page. Run by `npm run build` (and so by
// `npm start` and `npm test`).
import { build } from 'esbuild';
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { extname, join } from 'node:path';

const PACKAGES = join(import.meta.dirname, '..', '..');
const STATIC = new Set(['.html', '.css', '.svg', '.png', '.ico']);

for (const pkg of readdirSync(PACKAGES).sort()) {
  const web = join(PACKAGES, pkg, 'web');
  if (!existsSync(join(web, 'main.ts'))) continue;
  const out = join(PACKAGES, pkg, 'dist', 'web');
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  await build({
    entryPoints: [join(web, 'main.ts')],
    outfile: join(out, 'main.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022'],
    legalComments: 'eof',
    logLevel: 'warning',
  });
  for (const name of readdirSync(web)) {
    if (STATIC.has(extname(name).toLowerCase())) copyFileSync(join(web, name), join(out, name));
  }
  console.log(`built ${pkg}/dist/web`);
}
