import { expect } from 'vitest';

/**
 * The error `call` rejects with, checked to be a `type`; fails the test when `call` resolves.
 * For the clients' tests, whose every hostile case ends in a typed error.
 */
export async function rejectionOf<E extends Error>(
  call: Promise<unknown>,
  type: abstract new (...args: never[]) => E,
): Promise<E> {
  const outcome = await call.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if (!('error' in outcome)) throw new Error(`resolved with ${JSON.stringify(outcome.value)}`);
  expect(outcome.error).toBeInstanceOf(type);
  return outcome.error as E;
}

/**
 * The error `fn` throws, when it is a `type`; any other error is thrown on, and a `fn` that
 * returns fails the test. The synchronous counterpart of {@link rejectionOf}.
 */
export function thrownBy<E extends Error>(
  fn: () => unknown,
  type: abstract new (...args: never[]) => E,
): E {
  try {
    fn();
  } catch (error) {
    if (error instanceof type) return error;
    throw error;
  }
  throw new Error('no error thrown');
}
