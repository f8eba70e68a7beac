import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

/**
 * Free ports on 127.0.0.1, for what must be given a fixed port before it starts (a config file,
 * Unbound, a stock server): the one helper the CLI's tests, the tests of test/ and the bench
 * share. Servers of our own listen on port 0 instead and report the port they got.
 */

/** Ports tried before giving up: each try takes a port the kernel picked and checks it. */
export const FREE_PORT_TRIES = 20;

/**
 * A port free on 127.0.0.1 for both TCP and UDP at the time of the call: TCP port 0 gives one
 * the kernel considers free, then a UDP bind checks it there too (DNS listens on both). Another
 * process may take it before the caller binds it; callers that start several listeners ask once
 * per listener.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < FREE_PORT_TRIES; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
      });
    });
    const udpFree = await new Promise<boolean>((resolve) => {
      const socket = createSocket('udp4');
      socket.once('error', () => resolve(false));
      socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
    });
    if (udpFree) return port;
  }
  throw new Error(`no port free for both UDP and TCP on 127.0.0.1 after ${FREE_PORT_TRIES} tries`);
}
