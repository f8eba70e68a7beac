/**
 * @mimi-discovery/root — the root directory: its zone of delegations, trust anchor and hints.
 * The server itself is `startDp` of @mimi-discovery/authoritative with `role: "root"`.
 */
export { rootTrustAnchor, formatRootHints, parseRootHints, RootError } from './root.js';
export type { RootErrorCode } from './root.js';
export type { RootHints, RootServerHint } from './root.js';
