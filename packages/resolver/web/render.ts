import type { Entry, Failure, Mapping, Ranked, Result } from './result.js';

/**
 * The lookup page's view of a result: elements built with `createElement` and filled with
 * `textContent` only. Everything shown comes from the network — a recipient's free tags, URIs
 * and provider names, a server's detail text — so none of it is ever parsed as markup: a tag
 * `<img src=x onerror=…>` is shown as those characters (and the site's CSP forbids inline
 * script besides).
 */

/** Names of the Extended DNS Error codes (RFC 8914 §5.2, the IANA registry). */
export const EDE_NAMES: Readonly<Record<number, string>> = Object.freeze({
  0: 'Other Error',
  1: 'Unsupported DNSKEY Algorithm',
  2: 'Unsupported DS Digest Type',
  3: 'Stale Answer',
  4: 'Forged Answer',
  5: 'DNSSEC Indeterminate',
  6: 'DNSSEC Bogus',
  7: 'Signature Expired',
  8: 'Signature Not Yet Valid',
  9: 'DNSKEY Missing',
  10: 'RRSIGs Missing',
  11: 'No Zone Key Bit Set',
  12: 'NSEC Missing',
  13: 'Cached Error',
  14: 'Not Ready',
  15: 'Blocked',
  16: 'Censored',
  17: 'Filtered',
  18: 'Prohibited',
  19: 'Stale NXDomain Answer',
  20: 'Not Authoritative',
  21: 'Not Supported',
  22: 'No Reachable Authority',
  23: 'Network Error',
  24: 'Invalid Data',
});

/** A failure's reason in words (the resolver's `DiscoveryErrorReason`). */
const REASONS: Readonly<Record<string, string>> = Object.freeze({
  bogus: 'the answer failed DNSSEC validation (bogus): it cannot be trusted',
  timeout: 'the servers did not answer in time',
  limit: 'the lookup went past one of the resolver’s limits',
  'invalid-csi': 'this is not a phone number or email address the network can look up',
  servfail: 'a server of the network failed to answer',
});

/** An element of `tag` with `className` and `text` as its text (never as markup). */
function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string,
  text?: string,
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className !== undefined && className !== '') node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A `<code>` of a value the person may copy (a key, a zone, a server). */
function code(text: string): HTMLElement {
  return el('code', undefined, text);
}

/** A description list of label → value (text or an element). */
function fields(rows: ReadonlyArray<readonly [string, string | Node]>): HTMLDListElement {
  const dl = el('dl');
  for (const [label, value] of rows) {
    dl.append(el('dt', undefined, label));
    const dd = el('dd');
    if (typeof value === 'string') dd.textContent = value;
    else dd.append(value);
    dl.append(dd);
  }
  return dl;
}

/** A list of tags, each a chip of text; "none" when there are none. */
function tagList(tags: readonly string[]): Node {
  if (tags.length === 0) return document.createTextNode('none');
  const ul = el('ul', 'tags');
  for (const tag of tags) ul.append(el('li', undefined, tag));
  return ul;
}

/** Seconds since the epoch as a UTC date and time, `2027-01-31 14:05:09 UTC`. */
export function formatTime(seconds: number): string {
  const date = new Date(seconds * 1000);
  if (Number.isNaN(date.getTime())) return `${seconds} (not a date)`;
  return `${date.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** The headline of a result: the status in words. */
export function headline(result: Result): string {
  switch (result.status) {
    case 'found':
      return 'Found: this person can be reached';
    case 'empty':
      return 'Registered, but no app listed (empty)';
    case 'none':
      return 'Not registered (none)';
    case 'error':
      return 'The lookup failed (error)';
  }
}

/** What the status means, in a sentence for support staff. */
function explanation(result: Result): string {
  switch (result.status) {
    case 'found':
      return result.msps.length === 0
        ? `${result.csi} has published mappings, but none lists an app this resolver's senders may use (each entry is limited to a context or to senders on its own app).`
        : `${result.csi} can be reached on ${count(result.msps.length, 'app')}, listed in the person's order of preference, from ${count(result.mappings.length, 'verified mapping')}.`;
    case 'empty':
      return `${result.csi} has published ${count(result.mappings.length, 'verified mapping')} listing no app: the person chose not to be found on any app.`;
    case 'none':
      return `No one has published a mapping for ${result.csi}. Its absence is proven by a signed denial (DNSSEC), not merely assumed.`;
    case 'error':
      return `${result.csi} could not be looked up: ${REASONS[result.error?.reason ?? ''] ?? result.error?.reason ?? 'unknown reason'}.`;
  }
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** The rows of a failure: reason, detail, and the Extended DNS Error (RFC 8914). */
function failureFields(failure: Failure): HTMLDListElement {
  const rows: Array<readonly [string, string | Node]> = [
    ['Reason', failure.reason],
    ['Detail', failure.detail],
  ];
  if (failure.ede !== undefined) {
    const name = EDE_NAMES[failure.ede.infoCode] ?? 'unassigned code';
    const text = failure.ede.text === '' ? '' : `: ${failure.ede.text}`;
    rows.push(['Extended DNS Error', `${failure.ede.infoCode} (${name})${text}`]);
  }
  return fields(rows);
}

function rankedItem(msp: Ranked): HTMLLIElement {
  const li = el('li', 'card');
  li.append(el('h4', undefined, msp.provider));
  const rows: Array<readonly [string, string | Node]> = [];
  if (msp.uri !== undefined) rows.push(['Address', code(msp.uri)]);
  rows.push(['For', msp.contexts.length === 0 ? 'everyone' : msp.contexts.join(', ')]);
  if (msp.pref !== undefined) rows.push(['Order', String(msp.pref)]);
  rows.push(['Same app only', msp.sameMsp ? 'yes: only senders on this app' : 'no']);
  rows.push(['Tags', tagList(msp.tags)]);
  rows.push(['From zone', code(msp.zone)]);
  rows.push(['Recipient key', code(msp.key)]);
  if (msp.audience !== undefined) rows.push(['Sealed for audience', code(msp.audience)]);
  li.append(fields(rows));
  return li;
}

function entryList(entries: readonly Entry[]): Node {
  if (entries.length === 0) return document.createTextNode('none');
  const ul = el('ul', 'plain');
  for (const entry of entries) {
    const li = el('li');
    li.append(el('strong', undefined, entry.provider));
    if (entry.uri !== undefined) li.append(' ', code(entry.uri));
    if (entry.tags.length > 0) li.append(tagList(entry.tags));
    ul.append(li);
  }
  return ul;
}

function sealedSummary(mapping: Mapping): Node {
  if (mapping.sealed.length === 0) return document.createTextNode('none');
  const wrap = el('div');
  wrap.append(
    el(
      'p',
      'summary',
      `${count(mapping.sealed.length, 'box')}, not opened here (only holders of an audience key can read them). Audience key ids:`,
    ),
  );
  const ul = el('ul', 'plain');
  for (const box of mapping.sealed) {
    const li = el('li');
    li.append(code(box.kid));
    ul.append(li);
  }
  wrap.append(ul);
  return wrap;
}

function mappingItem(mapping: Mapping, index: number, total: number): HTMLLIElement {
  const li = el('li', 'card');
  li.append(el('h4', undefined, `Mapping ${index + 1} of ${total}`));
  li.append(
    fields([
      ['Zone', code(mapping.zone)],
      ['Served by', code(mapping.server)],
      ['Prover', code(mapping.prover)],
      ['Recipient key', code(mapping.key)],
      ['Sequence', String(mapping.seq)],
      ['Issued', formatTime(mapping.iat)],
      ['Expires', formatTime(mapping.exp)],
      ['New key', mapping.isNew ? 'yes: this key replaces the older ones' : 'no'],
      ['Apps listed', entryList(mapping.msps)],
      ['Sealed boxes', sealedSummary(mapping)],
    ]),
  );
  return li;
}

/** The body of a result: summary, failure, ranked MSPs, mappings and the raw JSON. */
export function renderResult(result: Result, raw: unknown): DocumentFragment {
  const out = document.createDocumentFragment();
  out.append(el('p', 'summary', explanation(result)));
  if (result.error !== undefined) out.append(failureFields(result.error));
  const notes: string[] = [];
  if (result.stale) {
    notes.push(
      'Served from stale cache: every server of a zone failed, so this is the last answer known (RFC 8767).',
    );
  }
  notes.push(`The resolver may give this answer again for ${result.ttl} s.`);
  for (const note of notes) out.append(el('p', 'hint', note));
  if (result.msps.length > 0) {
    out.append(el('h3', undefined, 'Apps, in the order a sender tries them'));
    const ol = el('ol', 'msps');
    for (const msp of result.msps) ol.append(rankedItem(msp));
    out.append(ol);
  }
  if (result.mappings.length > 0) {
    out.append(el('h3', undefined, 'Where the answer came from'));
    const ol = el('ol', 'mappings');
    result.mappings.forEach((m, i) => ol.append(mappingItem(m, i, result.mappings.length)));
    out.append(ol);
  }
  out.append(rawJson(raw));
  return out;
}

/** A refusal of the API (bad input, rate limit) or a failure to reach it. */
export function renderRefusal(
  message: string,
  code: string,
  detail: string | undefined,
): DocumentFragment {
  const out = document.createDocumentFragment();
  out.append(el('p', 'summary problem', message));
  const rows: Array<readonly [string, string]> = [['Code', code]];
  if (detail !== undefined) rows.push(['Detail', detail]);
  out.append(fields(rows));
  return out;
}

/** The answer as the API sent it, for a ticket. */
export function rawJson(raw: unknown): HTMLDetailsElement {
  const details = el('details');
  details.append(el('summary', undefined, 'The answer as JSON'));
  details.append(el('pre', undefined, JSON.stringify(raw, null, 2)));
  return details;
}
