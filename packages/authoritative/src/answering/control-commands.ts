import {
  ControlError,
  canonicalName,
  metricsJson,
  type Clock,
  type ControlHandlers,
  type MetricsRegistry,
  type ReloadReport,
} from '@mimi-discovery/common';
import type { DiscoveryStore } from '../store/store.js';
import { zoneKeyStatus, zoneRollStatus, zoneSignatureStatus } from './zone-status.js';

/**
 * The control commands of a DP or of the root (`ctl` of the CLI, `control.ts` of
 * `@mimi-discovery/common`): `status`, `reload`, `zone-status`, `key-status`, `stats`. `flush` is
 * the resolver's: an authoritative server answers from its store, with nothing cached to flush
 * that a write does not already replace (`answer-cache.ts` follows the store's generation).
 */

/** The pieces of a running DP its control commands read. */
export interface DpControlState {
  readonly role: string;
  readonly store: DiscoveryStore;
  readonly now: Clock;
  readonly startedAt: number;
  readonly configFile: string | undefined;
  readonly registry: MetricsRegistry;
  /** The listeners, as `serve` prints them. */
  listeners(): unknown[];
  reload(): Promise<ReloadReport>;
  /** When the next pass of re-signing runs (seconds since the epoch). */
  nextResign(): number | undefined;
  /** Signatures expiring before this are renewed by that pass. */
  resignBefore(): number;
  lastReload(): { at: number; ok: boolean } | undefined;
}

/** The handlers of the DP's control commands. */
export function dpControlHandlers(state: DpControlState): ControlHandlers {
  const zonesOf = (zone: string | undefined): string[] => {
    const zones = state.store.listZones();
    if (zone === undefined) return zones;
    const origin = canonicalName(zone);
    if (!zones.includes(origin))
      throw new ControlError(
        'ERR_CONTROL_NO_ZONE',
        `this server holds no zone ${origin}${zones.length > 0 ? ` (it holds ${zones.join(', ')})` : ''}`,
      );
    return [origin];
  };
  return {
    status: () => {
      const now = state.now();
      return {
        role: state.role,
        pid: process.pid,
        startedAt: state.startedAt,
        uptimeSeconds: now - state.startedAt,
        configFile: state.configFile ?? null,
        zones: state.store.listZones().length,
        listeners: state.listeners(),
        lastReload: state.lastReload() ?? null,
      };
    },
    reload: () => state.reload(),
    'zone-status': (request) => {
      const now = state.now();
      return {
        zones: zonesOf(request.zone).map((origin) => {
          const info = state.store.zoneInfo(origin);
          const signatures = zoneSignatureStatus(state.store, origin);
          const roll = zoneRollStatus(origin);
          return {
            zone: origin,
            serial: info?.serial ?? null,
            nsec3: info?.nsec3 ?? null,
            keys: zoneKeyStatus(state.store, origin, now),
            ...(signatures === undefined ? {} : { signatures }),
            nextResign: state.nextResign() ?? null,
            resignBefore: state.resignBefore(),
            ...(roll === undefined ? {} : { roll }),
          };
        }),
      };
    },
    'key-status': (request) => {
      const now = state.now();
      return {
        prover: { publicKey: Buffer.from(state.store.proverKey().publicKey).toString('base64') },
        zones: zonesOf(request.zone).map((origin) => ({
          zone: origin,
          keys: zoneKeyStatus(state.store, origin, now),
        })),
      };
    },
    stats: () => metricsJson(state.registry),
  };
}
