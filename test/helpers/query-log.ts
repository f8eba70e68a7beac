import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { DNS_MESSAGE_MEDIA_TYPE } from '@mimi-discovery/common';

/**
 * Reading what a server's query log (design §10) wrote, and asking a DoH front end the way a
 * client that does not pad would, so the tests see the octets the server sent.
 */

/** The lines of a query log file (JSON Lines), parsed. */
export function readQueryLog(path: string): Array<Record<string, unknown>> {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** POSTs `wire` to a DoH URL trusting `ca` (PEM), and returns the response body as it came. */
export function dohPost(url: string, wire: Uint8Array, ca: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        ca,
        headers: { 'content-type': DNS_MESSAGE_MEDIA_TYPE, accept: DNS_MESSAGE_MEDIA_TYPE },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks)));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(Buffer.from(wire));
  });
}
