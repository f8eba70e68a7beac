import { isIPv4, isIPv6 } from 'node:net';
import { decodeBase32Hex } from './base32hex.js';
import { MimiError, WireError } from './errors.js';
import { formatLabels, parseLabels } from './names.js';
import type { RRClass, RRType, ResourceRecord, SvcbData, SvcParams } from './records.js';
import { codeToType, decodeRdata, encodeRdata, SVC_KEY_NAMES, typeToCode } from './wire.js';

/**
 * The master-file reader (RFC 1035 §5), the counterpart of `presentation.ts`: text in, records
 * of the model out. It reads what `formatZone` writes and what operators write for BIND, NSD and
 * Knot:
 *
 * ```
 * $ORIGIN example.com.
 * $TTL 1h
 * @       IN SOA ns1 hostmaster (
 *                 2024010101 ; serial
 *                 2h 15m 2w 300 )
 *         IN NS  ns1                 ; owner omitted: the previous one (example.com.)
 * ns1     IN 600 A 192.0.2.1         ; class and TTL in either order
 * x       TYPE65400 \# 3 a16176      ; RFC 3597 generic form (a MAP)
 * ```
 *
 * gives four records owned by `example.com`, `ns1.example.com` and `x.example.com`.
 *
 * What is read:
 * - `$ORIGIN` and `$TTL` (RFC 2308 §4); `@` for the origin; names without a trailing dot are
 *   relative to the origin; `\DDD` and `\X` escapes in names and character-strings (RFC 1035
 *   §5.1); `;` comments; parentheses joining lines; quoted strings (not across lines).
 * - An omitted owner (the line starts with a space or tab) is the previous record's owner; an
 *   omitted TTL is the `$TTL` in effect (the `defaultTtl` option before any `$TTL`), else the
 *   previous record's TTL (RFC 1035 §5.1); an omitted class is the previous record's, else IN.
 *   TTLs may use BIND's units (`1w2d3h4m5s`), as may the SOA timers.
 * - Every type of the model in its standard form (RFC 1035, RFC 3596, RFC 4034 §2.2, §3.2, §4.2,
 *   §5.3 with algorithm mnemonics and RRSIG times as YYYYMMDDHHmmSS or seconds, RFC 5155 §3.3,
 *   §4.3, RFC 9460 §2.1 and Appendix A, RFC 8976 §2.3); MAPREF as a name; MAP, AUTHKEY and KEYCONF, like every type
 *   without a presentation form here, in the RFC 3597 §5 generic form `\# <length> <hex>`, which
 *   any type may use. `TYPE<n>` and `CLASS<n>` name any type or class, and common IANA mnemonics
 *   outside the model (MX, SRV, …) are recognised, their RDATA then in the generic form.
 * - Not read: `$INCLUDE` (a string parser opens no files) and BIND's `$GENERATE`.
 *
 * Normalisation: every record goes through the wire codec (`encodeRdata`, then `decodeRdata`),
 * so what comes back is exactly what `decodeMessage` would give for the same records: names
 * without the trailing dot, case kept, escapes normalised (`\065` → `A`); IPv6 addresses
 * compressed and lowercase; NSEC/NSEC3 types and SVCB `mandatory` and `unknown` sorted; the
 * generic form of a type or class with a mnemonic (`TYPE1`, `CLASS1`, `\#` RDATA of an A record)
 * becomes the mnemonic form; RRSIG times reduced mod 2^32 (RFC 4034 §3.1.5). A record that the
 * codec would refuse is refused here, with the line it is on.
 *
 * The reader checks syntax, not zone rules: a missing SOA, records outside the origin or
 * mixed TTLs in an RRset are for the zone loader to judge.
 *
 * Two ways in, reading alike: `parseZoneFile` and `readZoneFile` take a whole text (at most
 * `maxRecords` records); `createZoneFileReader` and `readZoneFileChunks` take it piece by piece
 * as it arrives, cut anywhere, and hold one line (or one record spread over lines) at a time,
 * for files too large to hold, such as the export of a zone of millions of mappings.
 */

/** Most records one text may hold unless `maxRecords` says otherwise. */
export const MAX_ZONE_FILE_RECORDS = 1_000_000;

/**
 * Longest line, and longest record spread over lines in parentheses, in characters: room for
 * the generic form of the largest RDATA (65,535 octets as 131,070 hex digits) with its owner.
 */
export const MAX_ZONE_FILE_LINE_CHARS = 262_144;

/** Every code a {@link ZoneFileError} can carry. */
export const ZONE_FILE_ERROR_CODES = Object.freeze([
  /** Tokens, parentheses, quotes, escapes, numbers, missing or extra fields. */
  'ERR_ZONE_FILE_SYNTAX',
  /** A type mnemonic that is not known, or a type that cannot own a record. */
  'ERR_ZONE_FILE_UNKNOWN_TYPE',
  /** A name that does not parse, or a relative name or `@` without an origin. */
  'ERR_ZONE_FILE_BAD_NAME',
  /** RDATA that reads but that the record model refuses (the cause is the `WireError`). */
  'ERR_ZONE_FILE_BAD_RDATA',
  /** An unknown directive, or one this reader does not support (`$INCLUDE`, `$GENERATE`). */
  'ERR_ZONE_FILE_DIRECTIVE',
  /** More records than `maxRecords`, or a line over {@link MAX_ZONE_FILE_LINE_CHARS}. */
  'ERR_ZONE_FILE_TOO_LARGE',
  /** Options that cannot be used (a bad origin, a negative `maxRecords`). */
  'ERR_ZONE_FILE_OPTIONS',
] as const);

/** A code from {@link ZONE_FILE_ERROR_CODES}. */
export type ZoneFileErrorCode = (typeof ZONE_FILE_ERROR_CODES)[number];

/** Master-file text that cannot be read; the message starts with the line: `line 12: …`. */
export class ZoneFileError extends MimiError<ZoneFileErrorCode> {
  /** The line (from 1) where the problem is, when it is on a line. */
  readonly line: number | undefined;

  constructor(
    code: ZoneFileErrorCode,
    line: number | undefined,
    problem: string,
    options?: { cause?: unknown },
  ) {
    super(code, line === undefined ? problem : `line ${line}: ${problem}`, options);
    this.line = line;
  }
}

/** Options of {@link parseZoneFile}. */
export interface ZoneFileOptions {
  /** The origin before any `$ORIGIN`, absolute with or without the trailing dot. */
  origin?: string;
  /** The TTL of records without one before any `$TTL`. */
  defaultTtl?: number;
  /**
   * Most records to read; default {@link MAX_ZONE_FILE_RECORDS} for a whole text, no bound for
   * a reader fed in pieces ({@link createZoneFileReader}).
   */
  maxRecords?: number;
}

/**
 * Options of {@link readZoneFile} beyond {@link ZoneFileOptions}, for files with a narrower
 * syntax such as trust anchors.
 */
export interface ZoneFileReadOptions extends ZoneFileOptions {
  /** Accept `$ORIGIN` and `$TTL`; default true. */
  directives?: boolean;
  /**
   * With no origin, take names without the trailing dot as absolute rather than refusing them
   * (Unbound's reading of trust-anchor files); `@` still needs an origin.
   */
  bareNamesAbsolute?: boolean;
}

/** One record read, with the line its text starts on. */
export interface ZoneFileEntry {
  record: ResourceRecord;
  line: number;
}

/**
 * Reads a master file (RFC 1035 §5) into records, in the order of the text. See the module
 * comment for what is read and how records are normalised. Throws {@link ZoneFileError} naming
 * the line of the first problem.
 */
export function parseZoneFile(text: string, options: ZoneFileOptions = {}): ResourceRecord[] {
  return readZoneFile(text, options).map((entry) => entry.record);
}

/** {@link parseZoneFile} that also gives the line of each record. */
export function readZoneFile(text: string, options: ZoneFileReadOptions = {}): ZoneFileEntry[] {
  const reader = createZoneFileReader({
    ...options,
    maxRecords: options.maxRecords ?? MAX_ZONE_FILE_RECORDS,
  });
  const out = reader.push(text);
  for (const entry of reader.end()) out.push(entry);
  return out;
}

/**
 * A master-file reader fed the text piece by piece (a file read in chunks, a socket): each
 * {@link ZoneFileReader.push} gives the records that the text so far completes, so memory holds
 * one line (or one record spread over lines in parentheses), never the file. It reads exactly
 * what {@link readZoneFile} reads, with the same errors on the same lines, wherever the pieces
 * are cut (in the middle of a line, a token, a comment or a quoted string).
 *
 * Worked example: `push('a. 300 A 192.0.2.')` gives nothing (the line may go on),
 * `push('1\nb. 300 A 192.0.2.2')` gives the record of `a.` (line 1), and `end()` gives that of
 * `b.` (line 2).
 */
export interface ZoneFileReader {
  /**
   * Reads the next piece of text; returns the records completed by it, in order. Throws
   * {@link ZoneFileError} on the first problem (and again on every later call): a line over
   * {@link MAX_ZONE_FILE_LINE_CHARS} fails as soon as that much of it has come, newline or not.
   */
  push(chunk: string): ZoneFileEntry[];
  /** The end of the text: returns the last records; fails if a `(` is still open. */
  end(): ZoneFileEntry[];
}

/**
 * Options of {@link createZoneFileReader}: those of {@link readZoneFile}, except that
 * `maxRecords` has no default: a reader that holds one line at a time needs no bound on the
 * records of the whole text, so it has none unless one is given.
 */
export type ZoneFileReaderOptions = ZoneFileReadOptions;

/** A {@link ZoneFileReader} (see there). Throws {@link ZoneFileError} for bad options. */
export function createZoneFileReader(options: ZoneFileReaderOptions = {}): ZoneFileReader {
  const state = initialState({ ...options, maxRecords: options.maxRecords ?? Infinity });
  const scanner = new EntryScanner();
  let pending = '';
  let records = 0;
  let failure: unknown;
  let ended = false;
  const take = (entry: Entry | undefined, out: ZoneFileEntry[]): void => {
    if (entry === undefined) return;
    const record = readEntry(entry, state);
    if (record === undefined) return;
    if (records >= state.maxRecords) {
      throw new ZoneFileError(
        'ERR_ZONE_FILE_TOO_LARGE',
        entry.line,
        `more than ${state.maxRecords} records`,
      );
    }
    records += 1;
    out.push({ record, line: entry.line });
  };
  const guarded = (read: (out: ZoneFileEntry[]) => void): ZoneFileEntry[] => {
    if (failure !== undefined) throw failure;
    if (ended) {
      throw new ZoneFileError('ERR_ZONE_FILE_OPTIONS', undefined, 'the reader has ended');
    }
    const out: ZoneFileEntry[] = [];
    try {
      read(out);
    } catch (error) {
      failure = error;
      throw error;
    }
    return out;
  };
  return {
    push: (chunk) =>
      guarded((out) => {
        let pos = 0;
        let newline = chunk.indexOf('\n');
        if (pending !== '' && newline >= 0) {
          // The line began in an earlier piece: the one string made here is at most a line.
          const line = pending + chunk.slice(0, newline);
          pending = '';
          take(scanner.line(line, 0, line.length), out);
          pos = newline + 1;
          newline = chunk.indexOf('\n', pos);
        }
        while (newline >= 0) {
          take(scanner.line(chunk, pos, newline), out);
          pos = newline + 1;
          newline = chunk.indexOf('\n', pos);
        }
        if (pos < chunk.length) pending += chunk.slice(pos);
        scanner.checkLength(pending.length);
      }),
    end: () =>
      guarded((out) => {
        ended = true;
        const line = pending;
        pending = '';
        take(scanner.line(line, 0, line.length), out);
        scanner.end();
      }),
  };
}

/**
 * {@link createZoneFileReader} over a sequence of text pieces (a file stream with its encoding
 * set, for instance): yields the records each piece completes, in batches, never an empty one.
 */
export async function* readZoneFileChunks(
  chunks: AsyncIterable<string> | Iterable<string>,
  options: ZoneFileReaderOptions = {},
): AsyncGenerator<ZoneFileEntry[]> {
  const reader = createZoneFileReader(options);
  for await (const chunk of chunks) {
    const entries = reader.push(chunk);
    if (entries.length > 0) yield entries;
  }
  const last = reader.end();
  if (last.length > 0) yield last;
}

// ---------------------------------------------------------------------------------------------
// Tokens and entries (RFC 1035 §5.1)

/**
 * One token: its text with quotes removed and escapes kept (`\.`, `\034`), so that names and
 * character-strings can each interpret them.
 */
interface Token {
  text: string;
  /** Whether any part of it was in double quotes. */
  quoted: boolean;
  line: number;
}

/** One directive or record: its tokens, the line it starts on, whether the owner is omitted. */
interface Entry {
  tokens: Token[];
  line: number;
  ownerOmitted: boolean;
}

const SPACE = 0x20;
const TAB = 0x09;
const CR = 0x0d;
const QUOTE = 0x22;
const SEMICOLON = 0x3b;
const OPEN = 0x28;
const CLOSE = 0x29;
const BACKSLASH = 0x5c;

function isBlank(c: number): boolean {
  return c === SPACE || c === TAB || c === CR;
}

function isDelimiter(c: number): boolean {
  return isBlank(c) || c === SEMICOLON || c === OPEN || c === CLOSE;
}

function syntax(line: number, problem: string): never {
  throw new ZoneFileError('ERR_ZONE_FILE_SYNTAX', line, problem);
}

/**
 * Splits text into entries, one line at a time: a newline ends an entry unless parentheses are
 * open; `;` starts a comment; `(`, `)` and `"` need no surrounding space. It keeps only the
 * entry being read, so a file of millions of records is never held as tokens.
 */
class EntryScanner {
  /** The entry being read (parentheses open, or tokens of the current line). */
  private entry: Entry | undefined;
  /** Characters of the entry's lines before the current one, newlines included. */
  private entryBefore = 0;
  private depth = 0;
  private openLine = 0;
  private lineNumber = 0;

  /**
   * Reads the line `text[start, end)` (without its newline); returns the entry it completes,
   * if any.
   */
  line(text: string, start: number, end: number): Entry | undefined {
    this.lineNumber += 1;
    const line = this.lineNumber;
    if (end - start > MAX_ZONE_FILE_LINE_CHARS) this.tooLong(line);
    const ownerOmitted = start < end && isBlank(text.charCodeAt(start));
    let i = start;
    while (i < end) {
      const c = text.charCodeAt(i);
      if (isBlank(c)) {
        i += 1;
      } else if (c === SEMICOLON) {
        break;
      } else if (c === OPEN) {
        this.begin(line, ownerOmitted);
        if (this.depth === 0) this.openLine = line;
        this.depth += 1;
        i += 1;
      } else if (c === CLOSE) {
        if (this.depth === 0) syntax(line, 'unbalanced )');
        this.depth -= 1;
        i += 1;
      } else {
        let tokenText = '';
        let quoted = false;
        let run = i;
        while (i < end) {
          const d = text.charCodeAt(i);
          if (d === BACKSLASH) {
            if (i + 1 >= end) syntax(line, 'a backslash ends the line');
            i += 2;
          } else if (d === QUOTE) {
            tokenText += text.slice(run, i);
            quoted = true;
            i += 1;
            run = i;
            for (;;) {
              if (i >= end) syntax(line, 'quoted string is not closed on its line');
              const q = text.charCodeAt(i);
              if (q === QUOTE) break;
              i += q === BACKSLASH ? 2 : 1;
            }
            tokenText += text.slice(run, i);
            i += 1;
            run = i;
          } else if (isDelimiter(d)) {
            break;
          } else {
            i += 1;
          }
        }
        tokenText += text.slice(run, i);
        this.begin(line, ownerOmitted).tokens.push({ text: tokenText, quoted, line });
      }
    }
    const entry = this.entry;
    if (entry === undefined) return undefined;
    const chars = this.entryBefore + (end - start);
    if (chars > MAX_ZONE_FILE_LINE_CHARS) {
      throw new ZoneFileError(
        'ERR_ZONE_FILE_TOO_LARGE',
        entry.line,
        `record longer than ${MAX_ZONE_FILE_LINE_CHARS} characters`,
      );
    }
    if (this.depth > 0) {
      this.entryBefore = chars + 1;
      return undefined;
    }
    this.entry = undefined;
    return entry.tokens.length > 0 ? entry : undefined;
  }

  /**
   * Fails when the line being received, of which `chars` characters have come without a
   * newline, is already over {@link MAX_ZONE_FILE_LINE_CHARS}.
   */
  checkLength(chars: number): void {
    if (chars > MAX_ZONE_FILE_LINE_CHARS) this.tooLong(this.lineNumber + 1);
  }

  /** The end of the text: fails if a `(` is still open. */
  end(): void {
    if (this.depth > 0) syntax(this.openLine, '( is never closed');
  }

  /** The entry being read, started on `line` when there is none. */
  private begin(line: number, ownerOmitted: boolean): Entry {
    if (this.entry === undefined) {
      this.entry = { tokens: [], line, ownerOmitted };
      this.entryBefore = 0;
    }
    return this.entry;
  }

  private tooLong(line: number): never {
    throw new ZoneFileError(
      'ERR_ZONE_FILE_TOO_LARGE',
      line,
      `line longer than ${MAX_ZONE_FILE_LINE_CHARS} characters`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Entries to records

interface State {
  origin: string | undefined;
  /** The `$TTL` in effect. */
  defaultTtl: number | undefined;
  previousOwner: string | undefined;
  previousTtl: number | undefined;
  previousClass: RRClass;
  readonly maxRecords: number;
  readonly directives: boolean;
  readonly bareNamesAbsolute: boolean;
}

/** RFC 2181 §8: a TTL is at most 2^31 - 1. */
const MAX_TTL = 0x7fffffff;

function initialState(options: ZoneFileReadOptions): State {
  const bad = (problem: string): never => {
    throw new ZoneFileError('ERR_ZONE_FILE_OPTIONS', undefined, problem);
  };
  let origin: string | undefined;
  if (options.origin !== undefined) {
    try {
      origin = formatLabels(parseLabels(options.origin));
    } catch (cause) {
      throw new ZoneFileError('ERR_ZONE_FILE_OPTIONS', undefined, `bad origin ${options.origin}`, {
        cause,
      });
    }
  }
  const { defaultTtl, maxRecords = MAX_ZONE_FILE_RECORDS } = options;
  if (defaultTtl !== undefined && !(Number.isInteger(defaultTtl) && defaultTtl >= 0)) {
    bad(`defaultTtl must be a whole number of seconds, not ${defaultTtl}`);
  }
  if (defaultTtl !== undefined && defaultTtl > MAX_TTL) {
    bad(`defaultTtl must be at most ${MAX_TTL} (RFC 2181 §8)`);
  }
  if (!(Number.isInteger(maxRecords) || maxRecords === Infinity) || maxRecords < 0) {
    bad(`maxRecords must be a whole number, not ${maxRecords}`);
  }
  return {
    origin,
    defaultTtl,
    previousOwner: undefined,
    previousTtl: undefined,
    previousClass: 'IN',
    maxRecords,
    directives: options.directives ?? true,
    bareNamesAbsolute: options.bareNamesAbsolute ?? false,
  };
}

/** Reads one entry: a directive (returns nothing) or a record. */
function readEntry(entry: Entry, state: State): ResourceRecord | undefined {
  const tokens = new Tokens(entry);
  const first = entry.tokens[0] as Token;
  if (!first.quoted && first.text.startsWith('$')) {
    readDirective(tokens, state);
    return undefined;
  }

  let owner: string;
  if (entry.ownerOmitted) {
    if (state.previousOwner === undefined) {
      syntax(entry.line, 'record without an owner name (the line starts with white space)');
    }
    owner = state.previousOwner as string;
  } else {
    owner = readName(tokens.next('owner name'), 'owner name', state);
  }

  let ttl: number | undefined;
  let rrClass: RRClass | undefined;
  let typeToken: Token;
  for (;;) {
    const token = tokens.next('record type');
    if (ttl === undefined && TTL_SYNTAX.test(token.text) && !token.quoted) {
      ttl = readTtl(token, 'TTL', MAX_TTL);
    } else if (rrClass === undefined && CLASS_SYNTAX.test(token.text) && !token.quoted) {
      rrClass = readClass(token);
    } else {
      typeToken = token;
      break;
    }
  }
  if (ttl === undefined) ttl = state.defaultTtl ?? state.previousTtl;
  if (ttl === undefined) {
    syntax(entry.line, 'no TTL: give one, or a $TTL before the record');
  }
  rrClass ??= state.previousClass;
  const type = readType(typeToken);
  const record = readRecord(owner, type, rrClass, ttl as number, typeToken, tokens, state);
  state.previousOwner = owner;
  state.previousTtl = ttl;
  state.previousClass = rrClass;
  return record;
}

function readDirective(tokens: Tokens, state: State): void {
  const token = tokens.next('directive');
  const name = token.text.toUpperCase();
  if (!state.directives) {
    syntax(token.line, `directive ${token.text} is not allowed in this file`);
  }
  switch (name) {
    case '$ORIGIN': {
      const value = tokens.next('the origin after $ORIGIN');
      // With no origin yet, a name without the trailing dot can only mean the absolute name.
      state.origin = readName(value, 'origin', { ...state, bareNamesAbsolute: true });
      break;
    }
    case '$TTL': {
      state.defaultTtl = readTtl(tokens.next('the TTL after $TTL'), '$TTL', MAX_TTL);
      break;
    }
    case '$INCLUDE':
    case '$GENERATE':
      throw new ZoneFileError(
        'ERR_ZONE_FILE_DIRECTIVE',
        token.line,
        `${name} is not supported: expand it before reading the file`,
      );
    default:
      throw new ZoneFileError(
        'ERR_ZONE_FILE_DIRECTIVE',
        token.line,
        `unknown directive ${token.text}`,
      );
  }
  tokens.end(name);
}

/** The tokens of one entry, consumed in order. */
class Tokens {
  private index = 0;

  constructor(private readonly entry: Entry) {}

  /** The next token; fails naming `what` when there is none. */
  next(what: string): Token {
    const token = this.entry.tokens[this.index];
    if (token === undefined) syntax(this.lastLine(), `missing ${what}`);
    this.index += 1;
    return token as Token;
  }

  /** Whether another token follows. */
  more(): boolean {
    return this.index < this.entry.tokens.length;
  }

  /** Whether the next token is the RFC 3597 `\#` marker. */
  atGeneric(): boolean {
    const token = this.entry.tokens[this.index];
    return token !== undefined && !token.quoted && token.text === '\\#';
  }

  /** Every remaining token. */
  rest(): Token[] {
    const out = this.entry.tokens.slice(this.index);
    this.index = this.entry.tokens.length;
    return out;
  }

  /** Fails if any token is left after the fields of `what`. */
  end(what: string): void {
    const token = this.entry.tokens[this.index];
    if (token !== undefined) syntax(token.line, `unexpected ${token.text} after the ${what}`);
  }

  /** The line of the last token read, for a field that is missing. */
  lastLine(): number {
    return (this.entry.tokens[this.index - 1] ?? this.entry.tokens[0])?.line ?? this.entry.line;
  }
}

// ---------------------------------------------------------------------------------------------
// Fields

/** A TTL in seconds or BIND units (`1w2d3h4m5s`, case-insensitive). */
const TTL_SYNTAX = /^(?:[0-9]+|(?:[0-9]+[smhdw])+)$/i;
const TTL_UNITS: Readonly<Record<string, number>> = Object.freeze({
  s: 1,
  m: 60,
  h: 3600,
  d: 86_400,
  w: 604_800,
});

function readTtl(token: Token, what: string, max: number): number {
  if (!TTL_SYNTAX.test(token.text)) {
    syntax(token.line, `${what} must be seconds or units such as 1h30m, found ${token.text}`);
  }
  let seconds = 0;
  if (/^[0-9]+$/.test(token.text)) seconds = Number(token.text);
  else {
    for (const [, n, unit] of token.text.matchAll(/([0-9]+)([a-z])/gi)) {
      seconds += Number(n) * (TTL_UNITS[(unit as string).toLowerCase()] as number);
    }
  }
  if (seconds > max) {
    const why = max === MAX_TTL ? ' (RFC 2181 §8)' : '';
    syntax(token.line, `${what} ${token.text} is over ${max}${why}`);
  }
  return seconds;
}

const CLASS_SYNTAX = /^(?:IN|CH|HS|CLASS[0-9]+)$/i;
const CLASSES_BY_CODE: ReadonlyMap<number, RRClass> = new Map([
  [1, 'IN'],
  [3, 'CH'],
  [4, 'HS'],
]);

function readClass(token: Token): RRClass {
  const upper = token.text.toUpperCase();
  if (!upper.startsWith('CLASS')) return upper as RRClass;
  const code = Number(upper.slice(5));
  if (code === 0 || code === 254 || code > 0xffff || code === 255) {
    syntax(token.line, `${token.text} cannot be the class of a record`);
  }
  return CLASSES_BY_CODE.get(code) ?? `CLASS${code}`;
}

/** Whether a presentation name ends in an unescaped dot. */
function isAbsolute(text: string): boolean {
  if (!text.endsWith('.')) return false;
  let backslashes = 0;
  for (let i = text.length - 2; i >= 0 && text.charCodeAt(i) === BACKSLASH; i--) backslashes++;
  return backslashes % 2 === 0;
}

/** A name field: `@`, absolute, or relative to the origin; in the model's form. */
function readName(
  token: Token,
  what: string,
  state: Pick<State, 'origin' | 'bareNamesAbsolute' | 'directives'>,
): string {
  const text = token.text;
  if (token.quoted) {
    throw new ZoneFileError('ERR_ZONE_FILE_BAD_NAME', token.line, `${what} cannot be quoted`);
  }
  if (text === '@') {
    if (state.origin === undefined) {
      throw new ZoneFileError(
        'ERR_ZONE_FILE_BAD_NAME',
        token.line,
        state.directives
          ? '@ needs an origin ($ORIGIN or the origin option)'
          : '@ needs an origin: write the name',
      );
    }
    return state.origin;
  }
  let full: string;
  if (isAbsolute(text)) full = text;
  else if (state.origin !== undefined)
    full = state.origin === '.' ? text : `${text}.${state.origin}`;
  else if (state.bareNamesAbsolute) full = text;
  else {
    throw new ZoneFileError(
      'ERR_ZONE_FILE_BAD_NAME',
      token.line,
      `relative name ${text} needs an origin ($ORIGIN or the origin option)`,
    );
  }
  try {
    return formatLabels(parseLabels(full));
  } catch (cause) {
    const why = cause instanceof Error ? `: ${cause.message}` : '';
    throw new ZoneFileError('ERR_ZONE_FILE_BAD_NAME', token.line, `bad ${what} ${text}${why}`, {
      cause,
    });
  }
}

function readNumber(tokens: Tokens, what: string, max: number): number {
  const token = tokens.next(what);
  if (!/^[0-9]+$/.test(token.text) || Number(token.text) > max) {
    syntax(token.line, `${what} must be a number 0..${max}, found ${token.text}`);
  }
  return Number(token.text);
}

/** DNSSEC algorithm mnemonics (RFC 4034 Appendix A.1, IANA DNS Security Algorithm Numbers). */
const ALGORITHMS: ReadonlyMap<string, number> = new Map([
  ['RSAMD5', 1],
  ['DH', 2],
  ['DSA', 3],
  ['RSASHA1', 5],
  ['DSA-NSEC3-SHA1', 6],
  ['RSASHA1-NSEC3-SHA1', 7],
  ['RSASHA256', 8],
  ['RSASHA512', 10],
  ['ECC-GOST', 12],
  ['ECDSAP256SHA256', 13],
  ['ECDSAP384SHA384', 14],
  ['ED25519', 15],
  ['ED448', 16],
  ['INDIRECT', 252],
  ['PRIVATEDNS', 253],
  ['PRIVATEOID', 254],
]);

/** An algorithm field: a number or a mnemonic (RFC 4034 §2.2). */
function readAlgorithm(tokens: Tokens): number {
  const token = tokens.next('algorithm');
  const named = ALGORITHMS.get(token.text.toUpperCase());
  if (named !== undefined) return named;
  if (!/^[0-9]+$/.test(token.text) || Number(token.text) > 0xff) {
    syntax(token.line, `algorithm must be a number 0..255 or a mnemonic, found ${token.text}`);
  }
  return Number(token.text);
}

/** Octets written as hexadecimal over one or more tokens (white space allowed between). */
function readHex(tokens: Token[], what: string, line: number): Uint8Array {
  const text = tokens.map((t) => t.text).join('');
  if (text === '' || !/^(?:[0-9a-fA-F]{2})+$/.test(text)) {
    syntax(tokens[0]?.line ?? line, `${what} must be hexadecimal octets`);
  }
  return new Uint8Array(Buffer.from(text, 'hex'));
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Octets written as base64 over one or more tokens (RFC 4034 §2.2, §3.2). */
function readBase64(tokens: Token[], what: string, line: number): Uint8Array {
  const text = tokens.map((t) => t.text).join('');
  if (text === '' || !BASE64.test(text)) {
    syntax(tokens[0]?.line ?? line, `${what} must be base64`);
  }
  return new Uint8Array(Buffer.from(text, 'base64'));
}

/** An NSEC3 salt: `-` for none, else hexadecimal (RFC 5155 §3.3). */
function readSalt(tokens: Tokens): Uint8Array {
  const token = tokens.next('salt');
  return token.text === '-' ? new Uint8Array(0) : readHex([token], 'salt', token.line);
}

/**
 * RRSIG times (RFC 4034 §3.2): YYYYMMDDHHmmSS in UTC, or seconds since the epoch. Example:
 * `20150819220000` → 1440021600.
 */
function readTime(tokens: Tokens, what: string): number {
  const token = tokens.next(what);
  const t = token.text;
  if (/^[0-9]{14}$/.test(t)) {
    const part = (from: number, to: number): number => Number(t.slice(from, to));
    const date = new Date(0);
    date.setUTCFullYear(part(0, 4), part(4, 6) - 1, part(6, 8));
    date.setUTCHours(part(8, 10), part(10, 12), part(12, 14));
    const seconds = date.getTime() / 1000;
    // A date such as 20240230 rolls over in Date; writing it back shows the difference.
    if (seconds < 0 || formatUtc(date) !== t) syntax(token.line, `${what} ${t} is not a date`);
    return seconds;
  }
  if (/^[0-9]{1,10}$/.test(t) && Number(t) <= 0xffffffff) return Number(t);
  return syntax(
    token.line,
    `${what} must be YYYYMMDDHHmmSS or seconds since the epoch, found ${t}`,
  );
}

function formatUtc(d: Date): string {
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${String(d.getUTCFullYear()).padStart(4, '0')}${two(d.getUTCMonth() + 1)}${two(d.getUTCDate())}${two(d.getUTCHours())}${two(d.getUTCMinutes())}${two(d.getUTCSeconds())}`;
}

/**
 * A character-string (RFC 1035 §5.1) as octets: `\DDD` is the octet DDD, `\X` is X, any other
 * character its UTF-8 octets. Example: `a\"b\032c` → `a"b c`.
 */
function charString(token: Token, what: string): Uint8Array {
  const text = token.text;
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === BACKSLASH) {
      const digits = text.slice(i + 1, i + 4);
      if (/^[0-9]/.test(digits)) {
        if (!/^[0-9]{3}$/.test(digits) || Number(digits) > 255) {
          syntax(token.line, `bad \\DDD escape in ${what} ${text}`);
        }
        out.push(Number(digits));
        i += 3;
        continue;
      }
      i += 1;
    }
    const code = text.codePointAt(i) as number;
    if (code < 0x80) out.push(code);
    else {
      out.push(...Buffer.from(String.fromCodePoint(code), 'utf8'));
      if (code > 0xffff) i += 1;
    }
  }
  return Uint8Array.from(out);
}

/** Record types of the model by mnemonic, OPT excepted (it never appears in a zone). */
const MODEL_TYPES: ReadonlySet<string> = new Set<RRType>([
  'A',
  'NS',
  'CNAME',
  'SOA',
  'TXT',
  'AAAA',
  'DS',
  'RRSIG',
  'NSEC',
  'DNSKEY',
  'NSEC3',
  'NSEC3PARAM',
  'CDS',
  'CDNSKEY',
  'SVCB',
  'ZONEMD',
  'MAP',
  'MAPREF',
  'AUTHKEY',
  'KEYCONF',
]);

/**
 * Mnemonics of types outside the model (IANA DNS Resource Record TYPEs), so that NSEC bitmaps
 * and RRSIGs of other software read, and a record of such a type can be given in the generic
 * form under its usual name.
 */
const OTHER_TYPES: ReadonlyMap<string, number> = new Map([
  ['MD', 3],
  ['MF', 4],
  ['MB', 7],
  ['MG', 8],
  ['MR', 9],
  ['NULL', 10],
  ['WKS', 11],
  ['PTR', 12],
  ['HINFO', 13],
  ['MINFO', 14],
  ['MX', 15],
  ['RP', 17],
  ['AFSDB', 18],
  ['X25', 19],
  ['ISDN', 20],
  ['RT', 21],
  ['NSAP', 22],
  ['NSAP-PTR', 23],
  ['SIG', 24],
  ['KEY', 25],
  ['PX', 26],
  ['GPOS', 27],
  ['LOC', 29],
  ['NXT', 30],
  ['SRV', 33],
  ['NAPTR', 35],
  ['KX', 36],
  ['CERT', 37],
  ['A6', 38],
  ['DNAME', 39],
  ['APL', 42],
  ['SSHFP', 44],
  ['IPSECKEY', 45],
  ['DHCID', 49],
  ['TLSA', 52],
  ['SMIMEA', 53],
  ['HIP', 55],
  ['OPENPGPKEY', 61],
  ['CSYNC', 62],
  ['HTTPS', 65],
  ['SPF', 99],
  ['NID', 104],
  ['L32', 105],
  ['L64', 106],
  ['LP', 107],
  ['EUI48', 108],
  ['EUI64', 109],
  ['NXNAME', 128],
  ['TKEY', 249],
  ['TSIG', 250],
  ['IXFR', 251],
  ['AXFR', 252],
  ['MAILB', 253],
  ['MAILA', 254],
  ['ANY', 255],
  ['URI', 256],
  ['CAA', 257],
  ['AMTRELAY', 260],
  ['RESINFO', 261],
  ['TA', 32768],
  ['DLV', 32769],
]);

/** The code of a type mnemonic or `TYPE<n>`, or undefined. */
function typeCode(text: string): number | undefined {
  const upper = text.toUpperCase();
  if (MODEL_TYPES.has(upper)) return typeToCode(upper as RRType);
  const other = OTHER_TYPES.get(upper);
  if (other !== undefined) return other;
  const generic = /^TYPE([0-9]{1,5})$/.exec(upper);
  return generic !== null && Number(generic[1]) <= 0xffff ? Number(generic[1]) : undefined;
}

/** The type of a record. RFC 6895 §3.1: 0, OPT, and 128–255 (meta and query types) own none. */
function readType(token: Token): RRType {
  const code = token.quoted ? undefined : typeCode(token.text);
  if (code === undefined) {
    throw new ZoneFileError('ERR_ZONE_FILE_UNKNOWN_TYPE', token.line, `unknown type ${token.text}`);
  }
  if (code === 0 || code === 41 || (code >= 128 && code <= 255)) {
    throw new ZoneFileError(
      'ERR_ZONE_FILE_UNKNOWN_TYPE',
      token.line,
      `${token.text} cannot be the type of a record`,
    );
  }
  return codeToType(code);
}

/** A type inside RDATA (RRSIG type covered, NSEC and NSEC3 bitmaps). */
function readTypeField(token: Token): RRType {
  const code = typeCode(token.text);
  if (code === undefined) {
    throw new ZoneFileError('ERR_ZONE_FILE_UNKNOWN_TYPE', token.line, `unknown type ${token.text}`);
  }
  return codeToType(code);
}

// ---------------------------------------------------------------------------------------------
// RDATA

function readRecord(
  name: string,
  type: RRType,
  rrClass: RRClass,
  ttl: number,
  typeToken: Token,
  tokens: Tokens,
  state: State,
): ResourceRecord {
  const line = typeToken.line;
  const shown = typeToken.text.toUpperCase();
  if (tokens.atGeneric()) {
    const rdata = readGeneric(tokens);
    return checked(
      line,
      shown,
      () => ({ name, type, class: rrClass, ttl, data: decodeRdata(type, rdata) }) as ResourceRecord,
    );
  }
  const data = readData(type, shown, tokens, state, line);
  tokens.end(`${shown} RDATA`);
  // The codec checks what the grammar cannot (TXT string lengths, SVCB key rules, …) and gives
  // the normal form, so the result equals what a decoded message would hold.
  return checked(line, shown, () => {
    const rr = { name, type, class: rrClass, ttl, data } as ResourceRecord;
    return { ...rr, data: decodeRdata(type, encodeRdata(rr)) } as ResourceRecord;
  });
}

function checked(line: number, type: string, build: () => ResourceRecord): ResourceRecord {
  try {
    return build();
  } catch (cause) {
    if (!(cause instanceof WireError)) throw cause;
    throw new ZoneFileError('ERR_ZONE_FILE_BAD_RDATA', line, `${type} RDATA: ${cause.message}`, {
      cause,
    });
  }
}

/** RFC 3597 §5: `\# <length> <hex>`, the hex optionally split by white space. */
function readGeneric(tokens: Tokens): Uint8Array {
  const marker = tokens.next('\\#');
  const length = readNumber(tokens, 'RDATA length after \\#', 0xffff);
  const rest = tokens.rest();
  if (length === 0) {
    if (rest.length > 0) syntax(marker.line, '\\# 0 takes no data');
    return new Uint8Array(0);
  }
  const rdata = readHex(rest, '\\# data', marker.line);
  if (rdata.length !== length) {
    syntax(marker.line, `\\# says ${length} octets, but ${rdata.length} follow`);
  }
  return rdata;
}

function readData(
  type: RRType,
  shown: string,
  tokens: Tokens,
  state: State,
  line: number,
): ResourceRecord['data'] {
  const name = (what: string): string => readName(tokens.next(what), what, state);
  switch (type) {
    case 'A':
    case 'AAAA': {
      const token = tokens.next('address');
      const ok =
        type === 'A' ? isIPv4(token.text) : isIPv6(token.text) && !token.text.includes('%');
      if (!ok) syntax(token.line, `bad ${type === 'A' ? 'IPv4' : 'IPv6'} address ${token.text}`);
      return token.text;
    }
    case 'NS':
    case 'CNAME':
    case 'MAPREF':
      return name('target name');
    case 'TXT': {
      const strings = tokens.rest();
      if (strings.length === 0) syntax(line, 'TXT needs at least one character-string');
      return strings.map((t) => charString(t, 'TXT string'));
    }
    case 'SOA':
      return {
        mname: name('SOA primary server name'),
        rname: name('SOA mailbox name'),
        serial: readNumber(tokens, 'SOA serial', 0xffffffff),
        refresh: readTtl(tokens.next('SOA refresh'), 'SOA refresh', 0xffffffff),
        retry: readTtl(tokens.next('SOA retry'), 'SOA retry', 0xffffffff),
        expire: readTtl(tokens.next('SOA expire'), 'SOA expire', 0xffffffff),
        minimum: readTtl(tokens.next('SOA minimum'), 'SOA minimum', 0xffffffff),
      };
    case 'DS':
    case 'CDS':
      return {
        keyTag: readNumber(tokens, 'key tag', 0xffff),
        algorithm: readAlgorithm(tokens),
        digestType: readNumber(tokens, 'digest type', 0xff),
        digest: readHex(tokens.rest(), 'DS digest', line),
      };
    case 'DNSKEY':
    case 'CDNSKEY':
      return {
        flags: readNumber(tokens, 'flags', 0xffff),
        protocol: readNumber(tokens, 'protocol', 0xff),
        algorithm: readAlgorithm(tokens),
        publicKey: readBase64(tokens.rest(), 'DNSKEY public key', line),
      };
    case 'RRSIG':
      return {
        typeCovered: readTypeField(tokens.next('type covered')),
        algorithm: readAlgorithm(tokens),
        labels: readNumber(tokens, 'labels', 0xff),
        originalTtl: readTtl(tokens.next('original TTL'), 'original TTL', 0xffffffff),
        expiration: readTime(tokens, 'expiration'),
        inception: readTime(tokens, 'inception'),
        keyTag: readNumber(tokens, 'key tag', 0xffff),
        signerName: name("signer's name"),
        signature: readBase64(tokens.rest(), 'signature', line),
      };
    case 'NSEC':
      return { nextName: name('next domain name'), types: tokens.rest().map(readTypeField) };
    case 'NSEC3': {
      const hashAlgorithm = readNumber(tokens, 'hash algorithm', 0xff);
      const flags = readNumber(tokens, 'flags', 0xff);
      const iterations = readNumber(tokens, 'iterations', 0xffff);
      const salt = readSalt(tokens);
      const hashToken = tokens.next('next hashed owner name');
      let nextHashedOwner: Uint8Array;
      try {
        nextHashedOwner = decodeBase32Hex(hashToken.text);
      } catch (cause) {
        throw new ZoneFileError(
          'ERR_ZONE_FILE_SYNTAX',
          hashToken.line,
          `next hashed owner name must be base32hex, found ${hashToken.text}`,
          { cause },
        );
      }
      return {
        hashAlgorithm,
        flags,
        iterations,
        salt,
        nextHashedOwner,
        types: tokens.rest().map(readTypeField),
      };
    }
    case 'NSEC3PARAM':
      return {
        hashAlgorithm: readNumber(tokens, 'hash algorithm', 0xff),
        flags: readNumber(tokens, 'flags', 0xff),
        iterations: readNumber(tokens, 'iterations', 0xffff),
        salt: readSalt(tokens),
      };
    case 'SVCB':
      return {
        priority: readNumber(tokens, 'SVCB priority', 0xffff),
        target: name('SVCB target name'),
        params: readSvcParams(tokens.rest()),
      };
    case 'ZONEMD':
      // RFC 8976 §2.3: the digest in hex, which may be split by white space.
      return {
        serial: readNumber(tokens, 'ZONEMD serial', 0xffffffff),
        scheme: readNumber(tokens, 'ZONEMD scheme', 0xff),
        hashAlgorithm: readNumber(tokens, 'ZONEMD hash algorithm', 0xff),
        digest: readHex(tokens.rest(), 'ZONEMD digest', line),
      };
    default:
      // MAP, AUTHKEY, KEYCONF and every type outside the model.
      return syntax(line, `${shown} RDATA must be in the RFC 3597 generic form \\# <length> <hex>`);
  }
}

// ---------------------------------------------------------------------------------------------
// SVCB parameters (RFC 9460 §2.1, §7, Appendix A; RFC 9461 §5)

/**
 * SvcParams `key=value` or `key` (RFC 9460 §2.1), a value quoted or not. Lists (`alpn`,
 * `mandatory`, the hints) follow Appendix A.1: a comma separates items, `\,` is a comma inside
 * one, after the character-string escapes are undone (so `h3,odd\\,one` is two ids).
 */
function readSvcParams(tokens: readonly Token[]): SvcParams {
  const params: SvcParams = {};
  const unknown: Array<{ key: number; value: Uint8Array }> = [];
  const seen = new Set<number>();
  for (const token of tokens) {
    const eq = token.text.indexOf('=');
    const keyText = (eq < 0 ? token.text : token.text.slice(0, eq)).toLowerCase();
    const value: Token | undefined =
      eq < 0 ? undefined : { ...token, text: token.text.slice(eq + 1) };
    const fail = (problem: string): never => syntax(token.line, `SVCB ${keyText}: ${problem}`);
    const known = (SVC_KEY_NAMES as readonly string[]).indexOf(keyText);
    const generic = /^key([0-9]{1,5})$/.exec(keyText);
    let key: number;
    if (known >= 0) key = known;
    else if (generic !== null) {
      key = Number(generic[1]);
      if (key > 0xfffe) fail('key 65535 is reserved (RFC 9460 §14.3.2)');
    } else {
      return syntax(token.line, `unknown SvcParamKey ${keyText}`);
    }
    if (seen.has(key)) fail('given twice');
    seen.add(key);
    if (generic !== null && key < SVC_KEY_NAMES.length) {
      // A known key under its generic name (BIND 9.18 writes dohpath as key7): the value is
      // the wire form of the parameter.
      const bytes = value === undefined ? new Uint8Array(0) : charString(value, keyText);
      Object.assign(params, genericSvcParam(key, bytes, token.line, keyText));
      continue;
    }
    const needValue = (): Token => value ?? fail('needs a value');
    const list = (): Uint8Array[] => valueList(charString(needValue(), keyText), fail);
    switch (key) {
      case 0:
        // A known key may be listed by its generic name too (`key8` for ohttp, as written).
        params.mandatory = list().map((item) => {
          const name = latin1(item).toLowerCase();
          const n = /^key([0-9]{1,5})$/.exec(name);
          return (n !== null ? SVC_KEY_NAMES[Number(n[1])] : undefined) ?? name;
        });
        break;
      case 1:
        params.alpn = list().map(latin1);
        break;
      case 2:
        if (value !== undefined) fail('takes no value');
        params.noDefaultAlpn = true;
        break;
      case 3: {
        const text = needValue().text;
        if (!/^[0-9]{1,5}$/.test(text) || Number(text) > 0xffff) fail(`bad port ${text}`);
        params.port = Number(text);
        break;
      }
      case 4:
        params.ipv4hint = list().map((item) => address(latin1(item), 4, fail));
        break;
      case 5:
        params.ech = readBase64([needValue()], 'SVCB ech', token.line);
        break;
      case 6:
        params.ipv6hint = list().map((item) => address(latin1(item), 6, fail));
        break;
      case 7: {
        const bytes = charString(needValue(), keyText);
        try {
          params.dohpath = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
        } catch {
          fail('not UTF-8 (RFC 9461 §5)');
        }
        break;
      }
      case 8:
        // RFC 9540 §4: ohttp has an empty value.
        if (value !== undefined) fail('takes no value');
        params.ohttp = true;
        break;
      default:
        unknown.push({
          key,
          value: value === undefined ? new Uint8Array(0) : charString(value, keyText),
        });
    }
  }
  if (unknown.length > 0) params.unknown = unknown;
  return params;
}

/**
 * The typed field of a known SvcParamKey from its wire value, decoded by the codec: the
 * parameter alone in an otherwise empty SVCB RDATA (`mandatory`, which needs the keys it lists,
 * is decoded here).
 */
function genericSvcParam(key: number, value: Uint8Array, line: number, keyText: string): SvcParams {
  if (key === 0) {
    if (value.length === 0 || value.length % 2 !== 0) {
      syntax(line, `SVCB ${keyText}: length must be a non-zero multiple of 2`);
    }
    const keys: string[] = [];
    for (let i = 0; i < value.length; i += 2) {
      const k = ((value[i] as number) << 8) | (value[i + 1] as number);
      keys.push(SVC_KEY_NAMES[k] ?? `key${k}`);
    }
    return { mandatory: keys };
  }
  if (value.length > 0xffff) syntax(line, `SVCB ${keyText}: value over 65535 octets`);
  const rdata = new Uint8Array(7 + value.length);
  rdata.set([0, 1, 0, key >>> 8, key & 0xff, value.length >>> 8, value.length & 0xff]);
  rdata.set(value, 7);
  try {
    return (decodeRdata('SVCB', rdata) as SvcbData).params;
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause);
    throw new ZoneFileError('ERR_ZONE_FILE_BAD_RDATA', line, `SVCB ${keyText}: ${why}`, { cause });
  }
}

/** RFC 9460 Appendix A.1 value-list: items split at `,`, with `\,` and `\\` escaped. */
function valueList(bytes: Uint8Array, fail: (problem: string) => never): Uint8Array[] {
  const items: Uint8Array[] = [];
  let current: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    if (b === BACKSLASH) {
      if (i + 1 >= bytes.length) fail('a backslash ends the value');
      current.push(bytes[i + 1] as number);
      i += 1;
    } else if (b === 0x2c) {
      items.push(Uint8Array.from(current));
      current = [];
    } else current.push(b);
  }
  items.push(Uint8Array.from(current));
  if (items.some((item) => item.length === 0)) fail('empty item in the list');
  return items;
}

function latin1(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}

function address(text: string, family: 4 | 6, fail: (problem: string) => never): string {
  const ok = family === 4 ? isIPv4(text) : isIPv6(text) && !text.includes('%');
  return ok ? text : fail(`bad IPv${family} address ${text}`);
}
