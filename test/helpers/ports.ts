import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

/**
 * Free ports on 127.0.0.1, for what must be given a fixed port before it starts (a config file,
 * Unbound, a stock server): the one helper the CLI's tests, the tests of test/ and the bench
 * share. Servers of our own listen on port 0 instead and report the port they got.
 */

/** Ports tried before giving up: each try takes a port the kernel picked and checks it. */
export const FREE_PORT_TRIES = 20;
/** Blocks tried by {@link freePortBlock} before giving up. */
export const FREE_BLOCK_TRIES = 50;
/** Where {@link freePortBlock} looks: below Linux's ephemeral range (32768–60999). */
export const PORT_BLOCK_RANGE = Object.freeze({ from: 20_000, to: 32_000 });

/** Whether `port` on 127.0.0.1 can be bound now, for TCP and for UDP. */
export function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(udpFree(port))));
  });
}

function udpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    socket.once('error', () => resolve(false));
    socket.bind(port, '127.0.0.1', () => socket.close(() => resolve(true)));
  });
}

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
    if (await udpFree(port)) return port;
  }
  throw new Error(`no port free for both UDP and TCP on 127.0.0.1 after ${FREE_PORT_TRIES} tries`);
}

/**
 * The first port of `size` consecutive ports that are free now for TCP and UDP, at a random
 * place in {@link PORT_BLOCK_RANGE}: for `mimi-discovery demo --port-base`, which lays out its
 * servers' ports from one base.
 */
export async function freePortBlock(size: number): Promise<number> {
  const blocks = Math.floor((PORT_BLOCK_RANGE.to - PORT_BLOCK_RANGE.from) / size);
  for (let attempt = 0; attempt < FREE_BLOCK_TRIES; attempt++) {
    const base = PORT_BLOCK_RANGE.from + Math.floor(Math.random() * blocks) * size;
    let free = true;
    for (let port = base; port < base + size && free; port++) free = await isPortFree(port);
    if (free) return base;
  }
  throw new Error(`no block of ${size} free ports after ${FREE_BLOCK_TRIES} tries`);
}
