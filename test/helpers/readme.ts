// The runnable shell blocks of a Markdown file.
//
// A runnable block is a ```sh fence right after a `<!-- readme-test … -->` marker (blank lines
// between them allowed). The marker may carry `expect="TEXT"` or `expect='TEXT'` attributes:
// strings the block's output must contain.

export interface ReadmeBlock {
  /** 1-based line of the marker, for messages. */
  line: number;
  /** The heading the block sits under. */
  heading: string;
  script: string;
  expect: string[];
}

const MARKER = /^<!--\s*readme-test\b(.*?)-->\s*$/;
const EXPECT = /expect=(?:"([^"]*)"|'([^']*)')/g;

export function readmeBlocks(markdown: string): ReadmeBlock[] {
  const lines = markdown.split('\n');
  const blocks: ReadmeBlock[] = [];
  let heading = '';
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i] ?? '';
    if (/^#{1,6} /.test(text)) heading = text.replace(/^#+ /, '');
    const marker = MARKER.exec(text);
    if (marker === null) continue;
    const expect = [...(marker[1] ?? '').matchAll(EXPECT)].map((m) => m[1] ?? m[2] ?? '');
    let j = i + 1;
    while (j < lines.length && (lines[j] ?? '').trim() === '') j++;
    if (lines[j] !== '```sh')
      throw new Error(`line ${i + 1}: a readme-test marker without a sh block`);
    const body: string[] = [];
    for (j++; j < lines.length && lines[j] !== '```'; j++) body.push(lines[j] ?? '');
    if (j >= lines.length) throw new Error(`line ${i + 1}: unterminated sh block`);
    blocks.push({ line: i + 1, heading, script: body.join('\n') + '\n', expect });
    i = j;
  }
  return blocks;
}

/** The DNS tools and clients a script calls, of those that may not be installed. */
export function externalTools(script: string): string[] {
  const found = new Set<string>();
  for (const m of script.matchAll(/(?:^|\$\(|[|;&]\s*)(curl|dig|kdig|delv)\s/gm)) {
    if (m[1] !== undefined) found.add(m[1]);
  }
  return [...found].sort();
}
