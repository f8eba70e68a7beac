/**
 * A small well-formedness checker for the XML the benchmarks write (their SVG charts): elements
 * nest and close in order, attributes are quoted and unique, `<` never appears in text or
 * attribute values and `&` only starts one of XML's predefined or numeric references (XML 1.0
 * §2.4, §3.1, §4.1). It returns the element tree, so that tests check structure, not text.
 */

export interface XmlElement {
  name: string;
  attributes: Map<string, string>;
  children: XmlElement[];
  /** Character data directly inside the element, references resolved. */
  text: string;
}

const PREDEFINED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

const isNameChar = (c: string): boolean =>
  (c >= 'a' && c <= 'z') ||
  (c >= 'A' && c <= 'Z') ||
  (c >= '0' && c <= '9') ||
  c === '-' ||
  c === '_' ||
  c === ':' ||
  c === '.';
const isSpace = (c: string | undefined): boolean =>
  c === ' ' || c === '\n' || c === '\t' || c === '\r';

/** Character data with references resolved; throws on a raw `<` or a bad `&`. */
function decode(raw: string, where: string): string {
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === '<') throw new Error(`raw < in ${where}`);
    if (c !== '&') {
      out += c;
      continue;
    }
    const end = raw.indexOf(';', i);
    if (end === -1) throw new Error(`unterminated reference in ${where}`);
    const ref = raw.slice(i + 1, end);
    if (ref.startsWith('#')) {
      const digits = ref.slice(1);
      if (digits.length === 0 || [...digits].some((d) => d < '0' || d > '9'))
        throw new Error(`bad character reference &${ref}; in ${where}`);
      out += String.fromCodePoint(Number(digits));
    } else {
      const value = PREDEFINED[ref];
      if (value === undefined) throw new Error(`unknown entity &${ref}; in ${where}`);
      out += value;
    }
    i = end;
  }
  return out;
}

/** The root element of `text`, or an error saying where it is not well-formed. */
export function parseXml(text: string): XmlElement {
  let i = 0;
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  const readName = (): string => {
    const start = i;
    while (i < text.length && isNameChar(text[i]!)) i++;
    if (i === start) throw new Error(`expected a name at ${start}`);
    return text.slice(start, i);
  };
  const skipSpace = (): void => {
    while (isSpace(text[i])) i++;
  };
  while (i < text.length) {
    if (text[i] !== '<') {
      const next = text.indexOf('<', i);
      const raw = text.slice(i, next === -1 ? text.length : next);
      const top = stack.at(-1);
      if (top === undefined) {
        if ([...raw].some((c) => !isSpace(c))) throw new Error(`text outside the root at ${i}`);
      } else top.text += decode(raw, `<${top.name}>`);
      i = next === -1 ? text.length : next;
      continue;
    }
    if (text.startsWith('<!--', i)) {
      const end = text.indexOf('-->', i);
      if (end === -1) throw new Error('unterminated comment');
      i = end + 3;
      continue;
    }
    if (text.startsWith('</', i)) {
      i += 2;
      const name = readName();
      skipSpace();
      if (text[i] !== '>') throw new Error(`bad end tag </${name} at ${i}`);
      i++;
      const open = stack.pop();
      if (open?.name !== name) throw new Error(`</${name}> closes <${open?.name ?? 'nothing'}>`);
      continue;
    }
    i++;
    const element: XmlElement = { name: readName(), attributes: new Map(), children: [], text: '' };
    for (;;) {
      const hadSpace = isSpace(text[i]);
      skipSpace();
      if (text.startsWith('/>', i) || text[i] === '>') break;
      if (!hadSpace) throw new Error(`attributes of <${element.name}> not separated at ${i}`);
      const name = readName();
      if (text[i] !== '=') throw new Error(`attribute ${name} of <${element.name}> has no value`);
      const quote = text[i + 1];
      if (quote !== '"' && quote !== "'")
        throw new Error(`attribute ${name} of <${element.name}> is not quoted`);
      const end = text.indexOf(quote, i + 2);
      if (end === -1) throw new Error(`attribute ${name} of <${element.name}> is not closed`);
      if (element.attributes.has(name))
        throw new Error(`attribute ${name} repeated on <${element.name}>`);
      element.attributes.set(name, decode(text.slice(i + 2, end), `attribute ${name}`));
      i = end + 1;
    }
    const parent = stack.at(-1);
    if (parent !== undefined) parent.children.push(element);
    else if (root === undefined) root = element;
    else throw new Error(`second root element <${element.name}>`);
    if (text.startsWith('/>', i)) i += 2;
    else {
      i++;
      stack.push(element);
    }
  }
  if (stack.length > 0) throw new Error(`<${stack.at(-1)!.name}> is not closed`);
  if (root === undefined) throw new Error('no root element');
  return root;
}

/** Every element of the tree under (and including) `element`, in document order. */
export function descendants(element: XmlElement): XmlElement[] {
  return [element, ...element.children.flatMap(descendants)];
}
