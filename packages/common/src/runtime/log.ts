/**
 * Structured JSON logs, one object per line on stderr (or a given stream), namespaced
 * (`authoritative:api`). Design §10: a log line never holds a sender (client address) together
 * with a CSI — call sites log one or the other, and `redactPair` below is the guard for fields.
 */

/** Log levels, most verbose first. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

const LEVELS: Readonly<Record<LogLevel, number>> = Object.freeze({
  debug: 10,
  info: 20,
  warn: 30,
  error: 40,
  silent: 100,
});

/** Fields of a log line: plain JSON values. */
export type LogFields = Readonly<Record<string, unknown>>;

/** A namespaced structured logger. */
export interface Logger {
  readonly namespace: string;
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
  /** A logger for a sub-namespace: `log.child('api')` of `authoritative` logs as `authoritative:api`. */
  child(namespace: string): Logger;
}

/** Where lines go and which are kept. */
export interface LoggerOptions {
  level?: LogLevel;
  /** Receives each line without the newline; default writes to stderr. */
  write?: (line: string) => void;
  /** Clock for the `time` field, milliseconds since the epoch; default `Date.now`. */
  now?: () => number;
}

/** Field names that identify a sender; never logged together with `csi`. */
const SENDER_FIELDS = Object.freeze(['remoteAddress', 'client', 'sender', 'ip']);

/**
 * Creates a logger. Lines look like
 * `{"time":"2026-01-01T00:00:00.000Z","level":"info","ns":"authoritative:api","event":"published","zone":"4.4.e164.mimi.arpa"}`.
 */
export function createLogger(namespace: string, options: LoggerOptions = {}): Logger {
  const threshold = LEVELS[options.level ?? 'info'];
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const now = options.now ?? Date.now;
  const emit = (level: Exclude<LogLevel, 'silent'>, event: string, fields?: LogFields): void => {
    if (LEVELS[level] < threshold) return;
    const line = {
      time: new Date(now()).toISOString(),
      level,
      ns: namespace,
      event,
      ...redactPair(fields ?? {}),
    };
    write(JSON.stringify(line, jsonReplacer));
  };
  return {
    namespace,
    debug: (event, fields) => emit('debug', event, fields),
    info: (event, fields) => emit('info', event, fields),
    warn: (event, fields) => emit('warn', event, fields),
    error: (event, fields) => emit('error', event, fields),
    child: (sub) => createLogger(`${namespace}:${sub}`, options),
  };
}

/** A logger that drops everything (tests, embedding). */
export const silentLogger: Logger = createLogger('silent', { level: 'silent' });

/**
 * Design §10 guard: when fields hold both a CSI and a sender, the sender is dropped, so no line
 * can link who asked with what was asked.
 */
export function redactPair(fields: LogFields): LogFields {
  if (!('csi' in fields)) return fields;
  if (!SENDER_FIELDS.some((k) => k in fields)) return fields;
  return Object.fromEntries(Object.entries(fields).filter(([k]) => !SENDER_FIELDS.includes(k)));
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64url');
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return { name: value.name, message: value.message, ...(code === undefined ? {} : { code }) };
  }
  if (typeof value === 'bigint') return value.toString();
  return value;
}
