import { readFile } from 'node:fs/promises';
import {
  ControlError,
  canonicalName,
  certificateSummary,
  changedConfigKeys,
  metricsJson,
  type CertificateSummary,
  type Clock,
  type ControlHandlers,
  type Logger,
  type MetricsRegistry,
  type Registry,
  type ReloadReport,
} from '@mimi-discovery/common';
import type { DpConfig } from '../config.js';
import type { DiscoveryStore } from '../store/store.js';
import { zoneKeyStatus, zoneSignatureStatus, type RollStatusJson } from './zone-status.js';

/**
 * The control commands of a DP or of the root (`ctl` of the CLI, `control.ts` of
 * `@mimi-discovery/common`): `status`, `reload`, `zone-status`, `key-status`, `stats`. `flush` is
 * the resolver's: an authoritative server answers from its store, with nothing cached to flush
 * that a write does not already replace (`answer-cache.ts` follows the store's generation).
 */

/** A listener whose TLS context can be swapped (`setTls` of the DoH and registration listeners). */
interface TlsListener {
  setTls(tls: { cert: Uint8Array; key: Uint8Array }): void;
}

/** What a DP's reload reads and swaps. */
export interface DpReloadContext {
  /** The config file, named in the report; undefined: the server was started without one. */
  readonly configFile?: string;
  /** Reads the config file again; default: the config the server started with. */
  readonly read?: () => Promise<DpConfig>;
  readonly tlsListeners: () => readonly TlsListener[];
  readonly now: Clock;
  readonly log: Logger;
}

/**
 * `reload` of a DP or the root (and SIGHUP): reads the config again, then the certificate and
 * key at its `tls` paths, and swaps them on every TLS listener; every other changed key is named
 * as needing a restart and keeps its old value (the config kept is the one started with, plus
 * the new `tls`, so a key stays named until the restart). A config or certificate that cannot be
 * used changes nothing, is logged (`reload-failed`) and rejects.
 */
export function createDpReload(
  initial: DpConfig,
  context: DpReloadContext,
): { reload(): Promise<ReloadReport>; lastReload(): { at: number; ok: boolean } | undefined } {
  let current = initial;
  let last: { at: number; ok: boolean } | undefined;
  const reload = async (): Promise<ReloadReport> => {
    try {
      const next = context.read === undefined ? current : await context.read();
      const restartNeeded = changedConfigKeys(
        { ...current, tls: current.tls === undefined },
        { ...next, tls: next.tls === undefined },
      );
      const listeners = context.tlsListeners();
      let certificate: CertificateSummary | undefined;
      const applied: string[] = [];
      if (next.tls !== undefined && listeners.length > 0) {
        const pair = { cert: await readFile(next.tls.cert), key: await readFile(next.tls.key) };
        // The first swap checks the pair: when it throws, nothing has changed.
        for (const listener of listeners) listener.setTls(pair);
        certificate = certificateSummary(pair.cert);
        applied.push('tls');
        current = { ...current, tls: next.tls };
      }
      last = { at: context.now(), ok: true };
      context.log.info('reloaded', {
        applied,
        restartNeeded,
        ...(certificate === undefined ? {} : { certificateValidTo: certificate.validTo }),
      });
      return { configFile: context.configFile, applied, restartNeeded, certificate };
    } catch (error) {
      last = { at: context.now(), ok: false };
      context.log.error('reload-failed', { error });
      throw error;
    }
  };
  return { reload, lastReload: () => last };
}

/** The pieces of a running DP its control commands read. */
export interface DpControlState {
  readonly role: string;
  readonly store: DiscoveryStore;
  readonly now: Clock;
  readonly startedAt: number;
  readonly configFile: string | undefined;
  /** The server's metrics (with answer workers, theirs added: `aggregatedRegistry`). */
  readonly registry: MetricsRegistry | Registry;
  /** The listeners, as `serve` prints them. */
  listeners(): unknown[];
  reload(): Promise<ReloadReport>;
  /** When the next pass of re-signing runs (seconds since the epoch). */
  nextResign(): number | undefined;
  /** Signatures expiring before this are renewed by that pass. */
  resignBefore(): number;
  lastReload(): { at: number; ok: boolean } | undefined;
  /** The key roller's phase and next event for a zone; absent when no roller runs here. */
  roll?(origin: string): RollStatusJson | undefined;
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
          const roll = state.roll?.(origin);
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
