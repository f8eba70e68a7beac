/**
 * The routes of the registration API (design §8) and the status each answers on success: stated
 * once, for the server (`registration-api.ts`) and its client (`client.ts`).
 */
export const REGISTRATION_ROUTES = Object.freeze({
  prove: { path: '/v1/prove', status: 202 },
  confirm: { path: '/v1/confirm', status: 200 },
  mappings: { path: '/v1/mappings', status: 201 },
  maprefs: { path: '/v1/maprefs', status: 201 },
  removals: { path: '/v1/removals', status: 200 },
  revocations: { path: '/v1/revocations', status: 200 },
  credentials: { path: '/v1/credentials', status: 200 },
} as const);
