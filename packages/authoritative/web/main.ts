import { ApiError, postJson, toBase64url, fromBase64url } from '../../common/web/api.js';
import { parseAudienceKey, sealMsps, type AudienceKey } from '../../common/src/protocol/sealed.js';
import {
  MAX_SEALED_PER_MAPPING,
  decodeAttestation,
  type MspEntry,
  type SealedBox,
} from '../../common/src/protocol/signed.js';
import { AppList, FieldError, type AppChoice } from './apps.js';
import { loadRecord, loadRecords, newKey, saveRecord, type RecipientRecord } from './keys.js';
import { nextSeq, nowSeconds, signedMapping, signedRemoval } from './objects.js';

/**
 * The recipient page (docs/recipients.md, "The recipient page"), served by a DP at
 * `/recipient/` of its registration API and calling that API on the same origin:
 *
 * 1. the person's phone number or email address → `POST /v1/prove` (a code is sent);
 * 2. the code → `POST /v1/confirm` with the public key of a key made in this browser (keys.ts),
 *    which keeps the attestation the DP returns;
 * 3. apps, tags and audiences → a Mapping signed here → `POST /v1/mappings`;
 * 4. "stop being findable": a Mapping with no app (status `empty`); "remove everything": a
 *    signed Removal → `POST /v1/removals` (status `none`).
 *
 * Everything shown is set with `textContent` (never HTML); each new step moves the focus to its
 * heading, and progress and errors are read out through the live regions.
 */

interface State {
  /** The canonical CSI the DP answered to `prove`. */
  csi?: string;
  record?: RecipientRecord;
}

const state: State = {};

function byId<T extends HTMLElement>(id: string): T {
  const node = document.getElementById(id);
  if (node === null) throw new Error(`the page has no #${id}`);
  return node as T;
}

const STEPS = ['step-number', 'step-code', 'step-apps', 'step-done'] as const;
type Step = (typeof STEPS)[number];

/** Shows `step` alone and moves the focus to its heading. */
function show(step: Step): void {
  for (const id of STEPS) byId(id).hidden = id !== step;
  byId(step).querySelector<HTMLElement>('h2')?.focus();
}

function say(text: string): void {
  byId('status').textContent = text;
}

function fail(text: string): void {
  const error = byId('error');
  error.textContent = text;
  error.hidden = text === '';
}

/** What a refusal means for the person, in plain words, with its code for support staff. */
export function explain(error: unknown): string {
  if (error instanceof FieldError) return error.message;
  if (!(error instanceof ApiError)) {
    return `Something went wrong in this page: ${error instanceof Error ? error.message : String(error)}`;
  }
  const words: Readonly<Record<string, string>> = {
    ERR_CSI_INVALID:
      'That is not a phone number or email address we can use. For a phone number, start with + and the country code.',
    ERR_NOT_AUTHORITATIVE:
      'This service does not handle that number or address. Your phone company or email provider may use another service.',
    ERR_RATE_LIMITED: 'Too many tries in a short time. Please wait a few minutes and try again.',
    ERR_CODE_INVALID: 'That code is not right. Check it and try again.',
    ERR_CODE_EXPIRED: 'That code has expired. Ask for a new one.',
    ERR_TOO_MANY_ATTEMPTS: 'Too many wrong codes. Ask for a new one.',
    ERR_CHANNEL_UNAVAILABLE: 'This service cannot send a code to that number or address.',
    ERR_CHANNEL_FAILED: 'The code could not be sent. Please try again later.',
    ERR_MAPPING_INVALID: 'The service did not accept your choice of apps.',
    ERR_REMOVAL_INVALID: 'The service did not accept the removal.',
    ERR_STALE_SEQ:
      'A newer choice is already published for you. Reload the page and confirm again.',
    ERR_SUPERSEDED:
      'Your number or address was confirmed again elsewhere with another key. Confirm it again here to use this browser.',
    ERR_REVOKED:
      'Your phone company or email provider withdrew earlier confirmations. Confirm your number or address again.',
    ERR_NOT_FOUND: 'Nothing is published for you with the key of this browser.',
    ERR_PROVER_NOT_AUTHORIZED: 'The service cannot confirm numbers or addresses right now.',
    ERR_PROVER_UNVERIFIABLE: 'The service cannot confirm numbers or addresses right now.',
    ERR_NETWORK: 'The service could not be reached. Check your connection and try again.',
    ERR_TIMEOUT: 'The service did not answer in time. Please try again.',
  };
  const text = words[error.code] ?? `The service refused: ${error.message}.`;
  const why = words[error.code] === undefined ? '' : ` (${error.message})`;
  return `${text}${why} [${error.code}]`;
}

/** Runs `act` with the form's buttons disabled; shows its error, if any, and focuses its field. */
async function busy(form: HTMLElement, act: () => Promise<void>): Promise<void> {
  const buttons = [...form.querySelectorAll('button')];
  for (const b of buttons) b.disabled = true;
  form.setAttribute('aria-busy', 'true');
  fail('');
  try {
    await act();
  } catch (error) {
    say('');
    fail(explain(error));
    if (error instanceof FieldError) {
      // The message goes once the field it points to is edited: it no longer describes it.
      error.field.addEventListener('input', () => fail(''), { once: true });
      error.field.focus();
    }
  } finally {
    form.removeAttribute('aria-busy');
    for (const b of buttons) b.disabled = false;
  }
}

/** How the code travels, in words, by the DP's channel name (channels.ts). */
function channelWords(channel: string, csi: string): string {
  if (channel === 'smtp') return 'by email';
  if (channel === 'webhook') return csi.startsWith('tel:') ? 'by text message' : 'by message';
  if (channel === 'outbox') return "to the service's test outbox (this is a test setup)";
  return `through "${channel}"`;
}

/** The CSI as a person writes it. */
function plain(csi: string): string {
  return csi.replace(/^tel:/, '').replace(/^mailto:/, '');
}

async function prove(): Promise<void> {
  const input = byId<HTMLInputElement>('csi');
  const typed = input.value.trim();
  if (typed === '') throw new FieldError(input, 'Enter your phone number or email address.');
  say('Sending you a code…');
  const answer = shaped(await postJson('/v1/prove', { csi: typed }), {
    csi: 'string',
    expiresAt: 'number',
    channel: 'string',
  });
  state.csi = answer.csi;
  delete state.record;
  const minutes = Math.max(1, Math.round((answer.expiresAt - nowSeconds()) / 60));
  byId('code-sent').textContent =
    `We sent a code to ${plain(answer.csi)} ${channelWords(answer.channel, answer.csi)}. ` +
    `It works for about ${minutes} minutes.`;
  byId<HTMLInputElement>('code').value = '';
  say(`Code sent to ${plain(answer.csi)}.`);
  show('step-code');
}

async function confirm(): Promise<void> {
  const csi = state.csi;
  if (csi === undefined) return show('step-number');
  const input = byId<HTMLInputElement>('code');
  const code = input.value.trim();
  if (code === '') throw new FieldError(input, 'Enter the code we sent you.');
  say('Checking the code…');
  // The key of this CSI in this browser, if any: confirming again binds the same key, so its
  // `seq` keeps growing across visits.
  const record = (await loadRecord(csi)) ?? (await newKey(csi));
  const answer = shaped(
    await postJson('/v1/confirm', { csi, code, key: toBase64url(record.publicKey) }),
    { attestation: 'string' },
  );
  const attestation = fromBase64url(answer.attestation);
  if (!equal(decodeAttestation(attestation).key, record.publicKey)) {
    throw new Error('the service attested another key than this browser sent');
  }
  state.record = { ...record, attestation };
  await saveRecord(state.record);
  showKeyKind(state.record);
  say(`${plain(csi)} is confirmed. Now choose your apps.`);
  show('step-apps');
}

type Kinds = Readonly<Record<string, 'string' | 'number'>>;
type Shaped<K extends Kinds> = { readonly [F in keyof K]: K[F] extends 'string' ? string : number };

/** The API's answer with the fields the page reads, each of its kind; else it throws. */
function shaped<K extends Kinds>(value: unknown, kinds: K): Shaped<K> {
  const object = (typeof value === 'object' && value !== null ? value : {}) as Record<
    string,
    unknown
  >;
  for (const [field, kind] of Object.entries(kinds)) {
    if (typeof object[field] !== kind) {
      throw new Error(`the service answered without a ${kind} "${field}"`);
    }
  }
  return object as Shaped<K>;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The audience keys typed in, one per line; throws a FieldError naming the bad line. */
async function audiences(): Promise<AudienceKey[]> {
  const field = byId<HTMLTextAreaElement>('audiences');
  const lines = field.value
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  if (lines.length > MAX_SEALED_PER_MAPPING) {
    throw new FieldError(field, `At most ${MAX_SEALED_PER_MAPPING} audience keys.`);
  }
  const keys: AudienceKey[] = [];
  for (const [i, line] of lines.entries()) {
    try {
      keys.push(await parseAudienceKey(line));
    } catch {
      // The message never quotes the line: it is a secret.
      throw new FieldError(
        field,
        `Audience key ${i + 1} is not a key: it must be one line that starts with mimi-audience:.`,
      );
    }
  }
  return keys;
}

async function publish(apps: AppList): Promise<void> {
  const record = current();
  const keys = await audiences();
  const choices = apps.read();
  const msps: MspEntry[] = choices.filter((c) => c.audience < 0).map((c) => c.entry);
  const boxes: SealedBox[] = [];
  for (const [i, key] of keys.entries()) {
    const entries = choices.filter((c: AppChoice) => c.audience === i).map((c) => c.entry);
    if (entries.length > 0) boxes.push(await sealMsps(record.csi, record.publicKey, entries, key));
  }
  say('Publishing your apps…');
  await send(record, msps, boxes);
  const sealed = choices.length - msps.length;
  finish(
    'You are findable',
    `People who look up ${plain(record.csi)} now see ${msps.length === 1 ? 'this app' : 'these apps'}` +
      (sealed > 0 ? `, and holders of your audience keys see ${sealed} more` : '') +
      '.',
    msps.map((m) => m.provider),
  );
}

async function optOut(): Promise<void> {
  const record = current();
  say('Telling apps you do not want to be found…');
  await send(record, [], []);
  finish(
    'You are not findable',
    `Apps that look up ${plain(record.csi)} are told you use none of them through this service.`,
    [],
  );
}

async function remove(): Promise<void> {
  const record = current();
  say('Removing what you published…');
  const now = nowSeconds();
  const seq = nextSeq(record, now);
  const removal = await signedRemoval(record, seq, now);
  state.record = { ...record, seq };
  await saveRecord(state.record);
  await postJson('/v1/removals', { removal: toBase64url(removal) });
  finish(
    'Removed',
    `Nothing is published for ${plain(record.csi)} any more. You can choose apps again at any time.`,
    [],
  );
}

/** Signs and sends a mapping of `msps` and `boxes`, with the next `seq` of the key. */
async function send(
  record: RecipientRecord,
  msps: readonly MspEntry[],
  boxes: readonly SealedBox[],
): Promise<void> {
  const now = nowSeconds();
  const seq = nextSeq(record, now);
  const mapping = await signedMapping(record, msps, boxes, seq, now);
  // The seq is kept before sending: whether or not the DP applies it, the next one is higher.
  state.record = { ...record, seq };
  await saveRecord(state.record);
  await postJson('/v1/mappings', { csi: record.csi, mapping: toBase64url(mapping) });
}

function current(): RecipientRecord {
  if (state.record?.attestation === undefined) {
    show('step-number');
    throw new Error('confirm your number or address first');
  }
  return state.record;
}

function finish(title: string, summary: string, providers: readonly string[]): void {
  byId('h-done').textContent = title;
  byId('done-summary').textContent = summary;
  const list = byId('done-apps');
  list.replaceChildren(
    ...providers.map((p) => {
      const item = document.createElement('li');
      item.textContent = p;
      return item;
    }),
  );
  list.hidden = providers.length === 0;
  say(`${title}. ${summary}`);
  show('step-done');
}

function showKeyKind(record: RecipientRecord): void {
  byId('key-kind').textContent =
    record.backend === 'webcrypto'
      ? 'This browser keeps it with its own Ed25519, and the key cannot be read out of it.'
      : 'This browser has no Ed25519 of its own, so this page signs with its built-in code.';
  document.body.dataset['keyBackend'] = record.backend;
}

/**
 * Offers the CSIs this browser holds an unexpired attestation for: the person comes back to
 * change, opt out or remove without a new code (the DP checks the attestation on every
 * mapping, so an expired or revoked one is refused there with its own words).
 */
async function offerKnown(): Promise<void> {
  const now = nowSeconds();
  const known = (await loadRecords()).filter(
    (r) => r.attestation !== undefined && decodeAttestation(r.attestation).exp > now,
  );
  const list = byId('known-list');
  list.replaceChildren(
    ...known.map((record) => {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'secondary';
      button.textContent = `Continue with ${plain(record.csi)}`;
      button.addEventListener('click', () => {
        fail('');
        state.csi = record.csi;
        state.record = record;
        showKeyKind(record);
        say(`Continuing with ${plain(record.csi)}.`);
        show('step-apps');
      });
      const item = document.createElement('li');
      item.append(button);
      return item;
    }),
  );
  byId('known').hidden = known.length === 0;
}

function start(): void {
  const apps = new AppList(byId('apps'));
  apps.add();
  const audienceField = byId<HTMLTextAreaElement>('audiences');
  const countAudiences = (): void =>
    apps.setAudiences(
      audienceField.value.split(/\r?\n/).filter((l) => l.trim().startsWith('mimi-audience:'))
        .length,
    );
  audienceField.addEventListener('input', countAudiences);

  const numberForm = byId<HTMLFormElement>('form-number');
  numberForm.addEventListener('submit', (event) => {
    event.preventDefault();
    void busy(numberForm, prove);
  });
  const codeForm = byId<HTMLFormElement>('form-code');
  codeForm.addEventListener('submit', (event) => {
    event.preventDefault();
    void busy(codeForm, confirm);
  });
  byId('restart').addEventListener('click', () => {
    fail('');
    say('');
    show('step-number');
  });
  const appsForm = byId<HTMLFormElement>('form-apps');
  appsForm.addEventListener('submit', (event) => {
    event.preventDefault();
    void busy(appsForm, () => publish(apps));
  });
  byId('add-app').addEventListener('click', () => apps.add().focus());
  const done = byId('step-done');
  byId('edit').addEventListener('click', () => {
    fail('');
    show('step-apps');
  });
  byId('opt-out').addEventListener('click', () => void busy(done, optOut));
  byId('remove').addEventListener('click', () => void busy(done, remove));
  void offerKnown()
    .catch(() => undefined) // No storage (a private window may refuse it): nothing to offer.
    .finally(() => (document.body.dataset['ready'] = 'true'));
}

start();
