import {
  CONTEXT_TAG_PREFIX,
  PREF_MAX,
  PREF_TAG_PREFIX,
  SAME_MSP_TAG,
  checkPreferenceTags,
  isContext,
} from '../../common/src/protocol/preferences.js';
import { MAX_MSPS_PER_MAPPING, type MspEntry } from '../../common/src/protocol/signed.js';

/**
 * The "apps" part of the recipient page: one fieldset per app (an MSP entry of the mapping),
 * read into an entry with its tags in the vocabulary of docs/recipients.md ("The words you can
 * use"): who it is for (`personal`, `business`, `ctx:<name>`), its order (`pref:<n>`), "only
 * senders on the same app" (`same-msp`), free tags; and which audience sees it (none: public).
 * Built with DOM calls, no HTML strings, so nothing typed is ever parsed as markup.
 */

/** Orders offered in the "order" list: 1 to this (the vocabulary allows up to PREF_MAX). */
export const ORDER_CHOICES = 10;

/** A field the person must fix: its element and the sentence to show. */
export class FieldError extends Error {
  constructor(
    readonly field: HTMLElement,
    message: string,
  ) {
    super(message);
    this.name = 'FieldError';
  }
}

/** One app as read from its fieldset; `audience` is an index into the audience keys, or -1. */
export interface AppChoice {
  readonly entry: MspEntry;
  readonly audience: number;
}

interface AppRow {
  readonly root: HTMLFieldSetElement;
  readonly provider: HTMLInputElement;
  readonly uri: HTMLInputElement;
  readonly who: readonly HTMLInputElement[];
  readonly group: HTMLInputElement;
  readonly order: HTMLSelectElement;
  readonly sameMsp: HTMLInputElement;
  readonly tags: HTMLInputElement;
  readonly audience: HTMLSelectElement;
}

type Attrs = Readonly<Record<string, string>>;

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  children: readonly (Node | string)[] = [],
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}

const WHO = [
  ['everyone', 'Everyone'],
  ['personal', 'Personal contacts'],
  ['business', 'Business contacts'],
  ['group', 'A group I name'],
] as const;

/** The list of app fieldsets in `container`. */
export class AppList {
  private readonly rows: AppRow[] = [];
  private next = 0;
  private audienceCount = 0;

  constructor(private readonly container: HTMLElement) {}

  /** Adds an empty app fieldset and returns its provider input. */
  add(): HTMLInputElement {
    const n = this.next++;
    const id = (field: string): string => `app-${n}-${field}`;
    const provider = el('input', {
      id: id('provider'),
      type: 'text',
      spellcheck: 'false',
      autocapitalize: 'off',
      placeholder: 'chat.example',
      'aria-describedby': id('provider-hint'),
    });
    const uri = el('input', {
      id: id('uri'),
      type: 'text',
      spellcheck: 'false',
      autocapitalize: 'off',
      'aria-describedby': id('uri-hint'),
    });
    const who = WHO.map(([value], i) =>
      el('input', {
        id: id(`who-${value}`),
        type: 'radio',
        name: id('who'),
        value,
        ...(i === 0 ? { checked: '' } : {}),
      }),
    );
    const group = el('input', {
      id: id('group'),
      type: 'text',
      spellcheck: 'false',
      autocapitalize: 'off',
      'aria-describedby': id('group-hint'),
    });
    const order = el('select', { id: id('order') }, [el('option', { value: '' }, ['No order'])]);
    for (let i = 1; i <= ORDER_CHOICES; i++) {
      order.append(el('option', { value: String(i) }, [i === 1 ? '1 (first)' : String(i)]));
    }
    const sameMsp = el('input', { id: id('same-msp'), type: 'checkbox' });
    const tags = el('input', {
      id: id('tags'),
      type: 'text',
      spellcheck: 'false',
      autocapitalize: 'off',
      'aria-describedby': id('tags-hint'),
    });
    const audience = el('select', { id: id('audience') });
    const remove = el('button', { type: 'button', class: 'secondary small' }, ['Remove this app']);
    const legend = el('legend', {}, [`App ${this.rows.length + 1}`]);
    const root = el('fieldset', { class: 'app', id: id('fieldset') }, [
      legend,
      el('label', { for: id('provider') }, ["The app's domain"]),
      provider,
      el('p', { id: id('provider-hint'), class: 'hint' }, [
        'The web address of the app or its provider, without https://, for example chat.example.',
      ]),
      el('label', { for: id('uri') }, ['Your address in this app (optional)']),
      uri,
      el('p', { id: id('uri-hint'), class: 'hint' }, [
        'Only if the app gave you one, for example im:alice@chat.example.',
      ]),
      el('fieldset', { class: 'who' }, [
        el('legend', {}, ['Who is it for?']),
        ...WHO.flatMap(([value, text], i) => [
          el('div', { class: 'choice' }, [
            who[i] as HTMLInputElement,
            el('label', { for: id(`who-${value}`) }, [text]),
          ]),
        ]),
        el('label', { for: id('group') }, ['Group name (for "A group I name")']),
        group,
        el('p', { id: id('group-hint'), class: 'hint' }, [
          'Lower-case letters, digits and -, for example soccer. Only people who name this group see the app.',
        ]),
      ]),
      el('label', { for: id('order') }, ['Order (1 is tried first)']),
      order,
      el('div', { class: 'choice' }, [
        sameMsp,
        el('label', { for: id('same-msp') }, ['Only for people who use this same app']),
      ]),
      el('label', { for: id('tags') }, ['Other tags (optional, separated by spaces)']),
      tags,
      el('p', { id: id('tags-hint'), class: 'hint' }, [
        'Words for the apps themselves, for example mls.',
      ]),
      el('label', { for: id('audience') }, ['Who can see this app']),
      audience,
      remove,
    ]);
    const row: AppRow = { root, provider, uri, who, group, order, sameMsp, tags, audience };
    this.fillAudience(row);
    remove.addEventListener('click', () => this.remove(row));
    this.rows.push(row);
    this.container.append(root);
    this.renumber();
    return provider;
  }

  /** Drops `row`; the list keeps at least one app. */
  private remove(row: AppRow): void {
    const at = this.rows.indexOf(row);
    if (at < 0 || this.rows.length === 1) return;
    this.rows.splice(at, 1);
    row.root.remove();
    this.renumber();
    (this.rows[Math.min(at, this.rows.length - 1)]?.provider ?? row.provider).focus();
  }

  private renumber(): void {
    this.rows.forEach((row, i) => {
      const legend = row.root.querySelector('legend');
      if (legend !== null) legend.textContent = `App ${i + 1}`;
      const button = row.root.querySelector('button');
      if (button !== null) button.disabled = this.rows.length === 1;
    });
  }

  /** Sets how many audience keys there are: each app's "who can see" list offers them. */
  setAudiences(count: number): void {
    this.audienceCount = count;
    for (const row of this.rows) this.fillAudience(row);
  }

  private fillAudience(row: AppRow): void {
    const chosen = row.audience.value;
    row.audience.replaceChildren(el('option', { value: '-1' }, ['Everyone who looks me up']));
    for (let i = 0; i < this.audienceCount; i++) {
      row.audience.append(
        el('option', { value: String(i) }, [`Only holders of audience key ${i + 1}`]),
      );
    }
    row.audience.value = Number(chosen) < this.audienceCount ? chosen : '-1';
    row.audience.disabled = this.audienceCount === 0;
  }

  /** The apps as entries; throws {@link FieldError} at the first field to fix. */
  read(): AppChoice[] {
    if (this.rows.length > MAX_MSPS_PER_MAPPING) {
      throw new FieldError(
        this.rows[0]?.provider ?? this.container,
        `At most ${MAX_MSPS_PER_MAPPING} apps.`,
      );
    }
    return this.rows.map((row, i) => readRow(row, i + 1));
  }
}

function readRow(row: AppRow, n: number): AppChoice {
  const provider = row.provider.value.trim().toLowerCase().replace(/\.$/, '');
  if (provider === '') {
    throw new FieldError(row.provider, `App ${n}: name the app by its domain, e.g. chat.example.`);
  }
  if (!/^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(provider)) {
    throw new FieldError(
      row.provider,
      `App ${n}: "${provider}" is not a domain; write it as chat.example, without https:// or a path.`,
    );
  }
  const tags: string[] = [];
  const who = row.who.find((input) => input.checked)?.value ?? 'everyone';
  if (who === 'personal' || who === 'business') tags.push(who);
  if (who === 'group') {
    const context = `${CONTEXT_TAG_PREFIX}${row.group.value.trim()}`;
    if (!isContext(context)) {
      throw new FieldError(
        row.group,
        `App ${n}: a group name is 1 to 31 lower-case letters, digits and - (not first), e.g. soccer.`,
      );
    }
    tags.push(context);
  }
  if (row.order.value !== '') tags.push(`${PREF_TAG_PREFIX}${row.order.value}`);
  if (row.sameMsp.checked) tags.push(SAME_MSP_TAG);
  for (const tag of row.tags.value.split(/[\s,]+/)) if (tag !== '') tags.push(tag);
  const problem = checkPreferenceTags(tags);
  if (problem !== undefined) {
    throw new FieldError(
      row.tags,
      `App ${n}: ${problem} (order is 1 to ${PREF_MAX}, chosen above).`,
    );
  }
  const uri = row.uri.value.trim();
  const entry: MspEntry = uri === '' ? { provider, tags } : { provider, tags, uri };
  return { entry, audience: Number(row.audience.value) };
}
