import { Agent, request } from 'undici';

/**
 * HTTPS clients that leave from a chosen address of 127/8, so that each address stands for a
 * client of its own to a server's per-client limits, and the JSON API's discovery request
 * (`POST /v1/discover`) made through one of them.
 */

/** One agent per local address, each trusting the CA that `ca()` gives when first needed. */
export interface AgentsByAddress {
  /** The agent whose connections leave from `address` (HTTP/2 offered). */
  agentFor(address: string): Agent;
  /** Closes every agent made. */
  close(): Promise<void>;
}

/** Agents by local address; `ca` is read when an agent is made (after the CA exists). */
export function agentsByAddress(ca: () => string): AgentsByAddress {
  const agents = new Map<string, Agent>();
  return {
    agentFor(address) {
      let agent = agents.get(address);
      if (agent === undefined) {
        agent = new Agent({ localAddress: address, connect: { ca: ca() }, allowH2: true });
        agents.set(address, agent);
      }
      return agent;
    },
    async close() {
      await Promise.all([...agents.values()].map((agent) => agent.close()));
    },
  };
}

/** What the JSON API answered: the status, `Retry-After`, and the body as `B`. */
export interface DiscoverReply<B> {
  status: number;
  retryAfter: string | undefined;
  body: B;
}

/** POSTs `csis` to the JSON API at `apiUrl` through `dispatcher`. */
export async function postDiscover<B>(
  apiUrl: string,
  dispatcher: Agent,
  csis: readonly string[],
): Promise<DiscoverReply<B>> {
  const response = await request(`${apiUrl}/v1/discover`, {
    method: 'POST',
    dispatcher,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ csis }),
  });
  return {
    status: response.statusCode,
    retryAfter: response.headers['retry-after'] as string | undefined,
    body: (await response.body.json()) as B,
  };
}
