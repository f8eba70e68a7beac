import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import {
  DNS_MESSAGE_MEDIA_TYPE,
  createDohClient,
  queryTcp,
  queryUdp,
  type Message,
  type ServerAddress,
} from '@mimi-discovery/common';

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

/** Where a server's DNS front ends listen. */
export interface LoggedServer {
  readonly udp: ServerAddress;
  readonly tcp: ServerAddress;
  readonly dohUrl: string;
}

/**
 * The log lines, as `[transport, cached]`, of {@link askTwiceOverEach}: the second answer over
 * each transport comes from the answer cache.
 */
export const TWICE_OVER_EACH: ReadonlyArray<readonly [string, boolean]> = [
  ['udp', false],
  ['udp', true],
  ['tcp', false],
  ['tcp', true],
  ['doh', false],
  ['doh', true],
];

/**
 * Asks `query()` twice over UDP, then twice over TCP, then twice over DoH (trusting `ca`), one
 * after another, and returns the six responses in that order.
 */
export async function askTwiceOverEach(
  server: LoggedServer,
  ca: string,
  query: () => Message,
): Promise<Message[]> {
  const doh = createDohClient({ ca });
  const responses: Message[] = [];
  try {
    for (const over of ['udp', 'tcp', 'doh'] as const) {
      for (let i = 0; i < 2; i++) {
        responses.push(
          over === 'udp'
            ? await queryUdp(server.udp, query())
            : over === 'tcp'
              ? await queryTcp(server.tcp, query())
              : await doh.query(server.dohUrl, query()),
        );
      }
    }
  } finally {
    await doh.close();
  }
  return responses;
}
