/**
 * @mimi-discovery/authoritative — not built yet: this package's public surface is empty until its issue
 * lands (see the repository README's roadmap).
 */
export {};
