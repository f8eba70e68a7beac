import { performance } from 'node:perf_hooks';

/**
 * Progress of a command that runs long (`zone export`, `zone import` of a large zone), as one
 * line on stderr rewritten in place, the way `pv` and `rsync --progress` show theirs: records
 * done, octets, and the rate since the start. Shown only where someone watches — stderr on a
 * terminal, or when asked with `--progress` — and never on stdout, so nothing that a program
 * reads (a zone file, `--json`) ever carries it.
 *
 * Worked example: an export prints `\r\x1b[Kexport: 1,200,000 records, 512.0 MiB, 40,000
 * records/s` at most every {@link PROGRESS_INTERVAL_MS}, then once more with a newline when it
 * ends.
 */

/** Least time between two updates of the line, in milliseconds. */
export const PROGRESS_INTERVAL_MS = 250;

/** A progress line (see the module comment). */
export interface Progress {
  /** Counts `records` more records and `octets` more octets. */
  add(records: number, octets: number): void;
  /** Shows the totals a last time and ends the line. */
  done(): void;
}

/** A {@link Progress} that shows nothing. */
export const NO_PROGRESS: Progress = Object.freeze({
  add: () => undefined,
  done: () => undefined,
});

/**
 * A progress line labelled `label`, written with `write` (stderr); `clock` gives milliseconds
 * (default `performance.now`).
 */
export function createProgress(
  label: string,
  write: (text: string) => void,
  clock: () => number = () => performance.now(),
): Progress {
  const started = clock();
  let shown = -Infinity;
  let records = 0;
  let octets = 0;
  const line = (at: number): string => {
    const seconds = Math.max((at - started) / 1000, 0.001);
    return (
      `\r\x1b[K${label}: ${records.toLocaleString('en-US')} records, ${size(octets)}, ` +
      `${Math.round(records / seconds).toLocaleString('en-US')} records/s`
    );
  };
  return {
    add(more, moreOctets) {
      records += more;
      octets += moreOctets;
      const at = clock();
      if (at - shown < PROGRESS_INTERVAL_MS) return;
      shown = at;
      write(line(at));
    },
    done() {
      write(`${line(clock())}\n`);
    },
  };
}

/** Octets in binary units, one decimal. */
function size(octets: number): string {
  const units = ['octets', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = octets;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} octets` : `${value.toFixed(1)} ${units[unit]}`;
}
