import { ApiError, getJson } from '../../common/web/api.js';
import { headline, rawJson, renderRefusal, renderResult } from './render.js';
import { readResult } from './result.js';

/**
 * The lookup page (`src/lookup-page.ts`): one form, one request — `GET /v1/discover` on the
 * page's own origin, with the CSI as typed and the optional context — and the result below it.
 * The resolver checks the input (the page does not second-guess the CSI parser): a refusal is
 * shown with its code and detail. The result section is `aria-busy` while the request is out;
 * its heading takes the focus when it is filled, and a polite live region says what happened,
 * for screen readers.
 */

/** The route the page asks (`DISCOVER_PATH` of `src/json-api.ts`), relative to the origin. */
const DISCOVER_PATH = '/v1/discover';

function byId<T extends HTMLElement>(id: string, type: new () => T): T {
  const node = document.getElementById(id);
  if (!(node instanceof type)) throw new Error(`the page lacks #${id}`);
  return node;
}

function start(): void {
  const form = byId('lookup', HTMLFormElement);
  const csiInput = byId('csi', HTMLInputElement);
  const contextInput = byId('context', HTMLInputElement);
  const submit = byId('submit', HTMLButtonElement);
  const status = byId('status', HTMLParagraphElement);
  const section = byId('result', HTMLElement);
  const heading = byId('result-heading', HTMLHeadingElement);
  const body = byId('result-body', HTMLDivElement);

  /** Fills the result section, marks it with `kind` (for its colour) and moves focus to it. */
  const show = (kind: string, title: string, content: Node): void => {
    section.className = `result ${kind}`;
    heading.textContent = title;
    body.replaceChildren(content);
    section.hidden = false;
    section.setAttribute('aria-busy', 'false');
    status.textContent = title;
    heading.focus();
  };

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const csi = csiInput.value.trim();
    const context = contextInput.value.trim();
    if (csi === '') {
      csiInput.setAttribute('aria-invalid', 'true');
      status.textContent = 'Type a phone number or email address first.';
      csiInput.focus();
      return;
    }
    csiInput.removeAttribute('aria-invalid');
    const query = new URLSearchParams({ csi, ...(context === '' ? {} : { context }) });
    submit.disabled = true;
    section.setAttribute('aria-busy', 'true');
    status.textContent = 'Looking up…';
    getJson(`${DISCOVER_PATH}?${query.toString()}`)
      .then((value) => {
        const result = readResult(value);
        if (result === undefined) {
          const out = document.createDocumentFragment();
          out.append(
            renderRefusal(
              'The resolver sent an answer this page does not understand.',
              'ERR_BAD_RESPONSE',
              undefined,
            ),
            rawJson(value),
          );
          show('error', 'The answer could not be read', out);
          return;
        }
        show(result.status, headline(result), renderResult(result, value));
      })
      .catch((error: unknown) => {
        const e =
          error instanceof ApiError
            ? error
            : new ApiError('ERR_PAGE', 'Something went wrong on this page.', 0);
        const title =
          e.status >= 400 && e.status < 500
            ? 'The resolver refused the request'
            : 'The resolver could not be asked';
        show('error', title, renderRefusal(e.message, e.code, e.detail));
      })
      .finally(() => {
        submit.disabled = false;
      });
  });
}

start();
