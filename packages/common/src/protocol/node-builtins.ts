import type * as NodeBuffer from 'node:buffer';
import type * as NodeCrypto from 'node:crypto';

/**
 * Node's built-in modules for the protocol code that has a faster native path (Ed25519, blind
 * RSA, X25519), reached through `process.getBuiltinModule` (Node ≥ 20.16, Deno, Bun) rather than
 * a static import, so that the same modules also load in a browser page that bundles them (the
 * DP's recipient page): there, each of these is undefined and the portable path serves.
 */
function builtin(id: string): unknown {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  if (typeof proc?.getBuiltinModule !== 'function') return undefined;
  try {
    return proc.getBuiltinModule(id) ?? undefined;
  } catch {
    return undefined;
  }
}

/** `node:crypto`, or undefined where the runtime has none. */
export const nodeCrypto = (): typeof NodeCrypto | undefined =>
  builtin('node:crypto') as typeof NodeCrypto | undefined;

/** `node:buffer`, or undefined where the runtime has none. */
export const nodeBuffer = (): typeof NodeBuffer | undefined =>
  builtin('node:buffer') as typeof NodeBuffer | undefined;
