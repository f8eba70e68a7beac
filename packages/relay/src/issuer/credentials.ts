import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IssuerUser } from './config.js';

/**
 * Users' bearer credentials (RFC 6750 §2.1: `Authorization: Bearer <credential>`). A credential
 * is {@link CREDENTIAL_OCTETS} random octets, base64url; the config keeps only SHA-256 of it,
 * hex, so the config file is no secret. A credential is checked against every user's hash with
 * a constant-time comparison and no early exit, so the time taken says nothing of which user
 * or how much of a hash matched.
 */

/** Random octets of a credential: 256 bits, beyond guessing. */
export const CREDENTIAL_OCTETS = 32;
/** Longest `Authorization` value read; a credential is 43 characters. */
export const MAX_AUTHORIZATION_CHARS = 512;

/** A fresh credential, base64url without padding. */
export function generateCredential(): string {
  return randomBytes(CREDENTIAL_OCTETS).toString('base64url');
}

/** SHA-256 of a credential as the config stores it: 64 lowercase hex digits. */
export function hashCredential(credential: string): string {
  return createHash('sha256').update(credential, 'utf8').digest('hex');
}

/** The users of a config, ready for {@link authenticate}. */
export interface UserTable {
  readonly users: readonly { readonly id: string; readonly hash: Buffer }[];
}

/** Prepares the users of a config for {@link authenticate}. */
export function userTable(users: readonly IssuerUser[]): UserTable {
  return {
    users: users.map((u) => ({ id: u.id, hash: Buffer.from(u.credentialSha256, 'hex') })),
  };
}

/**
 * The id of the user whose credential an `Authorization` value carries, or undefined: no value,
 * a value over {@link MAX_AUTHORIZATION_CHARS}, another scheme, or a credential of no user.
 */
export function authenticate(header: string | undefined, table: UserTable): string | undefined {
  if (header === undefined || header.length > MAX_AUTHORIZATION_CHARS) return undefined;
  // RFC 6750 §2.1: "Bearer" 1*SP b64token; the scheme is case-insensitive (RFC 9110 §11.1).
  const match = /^bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header);
  if (match === null) return undefined;
  const hash = createHash('sha256')
    .update(match[1] as string, 'utf8')
    .digest();
  let found: string | undefined;
  for (const user of table.users) {
    if (timingSafeEqual(user.hash, hash) && found === undefined) found = user.id;
  }
  return found;
}
