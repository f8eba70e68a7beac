import {
  ControlError,
  metricsJson,
  parseCsi,
  type Clock,
  type ControlHandlers,
  type ReloadReport,
} from '@mimi-discovery/common';
import type { ResolverMetrics } from './metrics.js';
import type { Resolver } from './types.js';

/**
 * The control commands of a resolver (`ctl` of the CLI, `control.ts` of
 * `@mimi-discovery/common`): `status`, `reload`, `flush`, `stats`. `zone-status` and
 * `key-status` are an authoritative server's: a resolver serves no zone.
 */

/** What a resolver's control commands read and call. */
export interface ResolverControlState {
  readonly resolver: Resolver;
  readonly metrics: ResolverMetrics;
  readonly now: Clock;
  readonly startedAt: number;
  readonly configFile: string | undefined;
  listeners(): unknown[];
  reload(): Promise<ReloadReport>;
  /** Empties the front ends' answer cache (wire answers, by query octets). */
  clearAnswerCache(): void;
}

/** The handlers of a resolver's control commands. */
export function resolverControlHandlers(state: ResolverControlState): ControlHandlers {
  return {
    status: () => {
      const stats = state.resolver.stats();
      return {
        role: 'resolver',
        pid: process.pid,
        startedAt: state.startedAt,
        uptimeSeconds: state.now() - state.startedAt,
        configFile: state.configFile ?? null,
        listeners: state.listeners(),
        cacheBytes: stats.cacheBytes,
        upstreamQueries: stats.upstreamQueries,
        rootCopy: stats.rootCopy,
      };
    },
    reload: () => state.reload(),
    // The front ends' answer cache holds wire answers by query octets, with no index by name:
    // it is emptied whole for a name or a CSI too, so that no answer from before is given again.
    flush: (request) => {
      if (request.csi !== undefined) {
        let csi;
        try {
          csi = parseCsi(request.csi);
        } catch (error) {
          throw new ControlError(
            'ERR_CONTROL_BAD_REQUEST',
            `flush: csi: ${error instanceof Error ? error.message : String(error)}`,
          );
        }
        const flushed = state.resolver.flushCsi(csi);
        state.clearAnswerCache();
        return { scope: 'csi', csi, flushed };
      }
      if (request.name !== undefined) {
        const flushed = state.resolver.flushName(request.name);
        state.clearAnswerCache();
        return { scope: 'name', name: request.name, flushed };
      }
      state.resolver.flushCache();
      state.clearAnswerCache();
      return { scope: 'all' };
    },
    stats: () => metricsJson(state.metrics.registry),
  };
}
