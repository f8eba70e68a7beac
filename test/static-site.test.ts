import { mkdtempSync, rmSync, writeFileSync, mkdirSync, symlinkSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MAX_SITE_FILES,
  SITE_HEADERS,
  StaticSiteError,
  loadStaticSite,
  type StaticSite,
} from '@mimi-discovery/common';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A raw HTTP/1.1 request, the path sent exactly as given (no URL normalisation). */
function send(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.once('error', reject);
    req.end();
  });
}

describe('static site', () => {
  let dir: string;
  let site: StaticSite;
  let server: Server;
  let port: number;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mimi-site-'));
    const web = join(dir, 'web');
    mkdirSync(web);
    writeFileSync(join(web, 'index.html'), '<!doctype html><title>t</title>');
    writeFileSync(join(web, 'main.js'), 'console.log(1);');
    writeFileSync(join(web, 'style.css'), 'body{}');
    writeFileSync(join(web, 'notes.md'), 'not served: no content type');
    writeFileSync(join(dir, 'secret.txt'), 'outside the site');
    symlinkSync(join(dir, 'secret.txt'), join(web, 'link.txt'));
    mkdirSync(join(web, 'sub'));
    writeFileSync(join(web, 'sub', 'inner.js'), 'nested');
    site = loadStaticSite(web, '/recipient/');
    server = createServer((req, res) => {
      if (!site.handle(req, res)) {
        res.writeHead(418).end('not the site');
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
    // Added after the load: never served.
    writeFileSync(join(web, 'late.js'), 'late');
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the index at the mount, with the security headers and an ETag', async () => {
    const reply = await send(port, 'GET', '/recipient/');
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(reply.body).toContain('<title>t</title>');
    for (const [name, value] of Object.entries(SITE_HEADERS)) {
      expect(reply.headers[name]).toBe(value);
    }
    expect(reply.headers['etag']).toMatch(/^"[A-Za-z0-9_-]{22}"$/);
  });

  it('redirects the bare mount and answers 304 to a matching If-None-Match', async () => {
    const bare = await send(port, 'GET', '/recipient');
    expect(bare.status).toBe(308);
    expect(bare.headers['location']).toBe('/recipient/');
    const first = await send(port, 'GET', '/recipient/main.js');
    expect(first.headers['content-type']).toBe('text/javascript; charset=utf-8');
    const again = await send(port, 'GET', '/recipient/main.js', {
      'if-none-match': String(first.headers['etag']),
    });
    expect(again.status).toBe(304);
    expect(again.body).toBe('');
  });

  it('sends HEAD without a body and refuses other methods with 405', async () => {
    const head = await send(port, 'HEAD', '/recipient/style.css');
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe('6');
    expect(head.body).toBe('');
    const post = await send(port, 'POST', '/recipient/');
    expect(post.status).toBe(405);
    expect(post.headers['allow']).toBe('GET, HEAD');
  });

  it('serves only the files read at start: no traversal, no late file, no other type, no subdirectory', async () => {
    expect(site.files).toEqual(['index.html', 'link.txt', 'main.js', 'style.css']);
    for (const path of [
      '/recipient/../secret.txt',
      '/recipient/%2e%2e/secret.txt',
      '/recipient/..%2fsecret.txt',
      '/recipient//etc/passwd',
      '/recipient/late.js',
      '/recipient/notes.md',
      '/recipient/sub/inner.js',
      '/recipient/index.html%00.js',
    ]) {
      const reply = await send(port, 'GET', path);
      expect(reply.status, path).toBe(404);
      expect(reply.body, path).not.toContain('outside the site');
    }
    expect((await send(port, 'GET', '/other')).status).toBe(418);
    expect((await send(port, 'GET', '/recipientx')).status).toBe(418);
  });

  it('refuses a site that is not built, has no index or too many files', () => {
    expect(() => loadStaticSite(join(dir, 'missing'), '/x/')).toThrow(/npm run build/);
    const noIndex = join(dir, 'no-index');
    mkdirSync(noIndex);
    writeFileSync(join(noIndex, 'main.js'), '');
    expect(() => loadStaticSite(noIndex, '/x/')).toThrow(StaticSiteError);
    const many = join(dir, 'many');
    mkdirSync(many);
    writeFileSync(join(many, 'index.html'), '');
    for (let i = 0; i < MAX_SITE_FILES; i++) writeFileSync(join(many, `f${i}.js`), '');
    expect(() => loadStaticSite(many, '/x/')).toThrow(/more than 64 files/);
    expect(() => loadStaticSite(noIndex, 'x')).toThrow(/mount/);
  });
});
