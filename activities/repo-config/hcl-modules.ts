// Finds `module "x" { source = "./…" }` in HCL text without an HCL parser: comments are blanked,
// then each module block is scanned with brace matching that skips strings, and `source` is read at
// the block's own level (so a nested block's attributes are not mistaken for it).

/** Comments replaced by spaces (offsets kept); strings left as they are. */
function blankComments(hcl: string): string {
  let out = '';
  let i = 0;
  while (i < hcl.length) {
    const c = hcl[i];
    if (c === '"') {
      const end = stringEnd(hcl, i);
      out += hcl.slice(i, end);
      i = end;
    } else if (c === '#' || (c === '/' && hcl[i + 1] === '/')) {
      const end = hcl.indexOf('\n', i);
      const stop = end < 0 ? hcl.length : end;
      out += ' '.repeat(stop - i);
      i = stop;
    } else if (c === '/' && hcl[i + 1] === '*') {
      const end = hcl.indexOf('*/', i + 2);
      const stop = end < 0 ? hcl.length : end + 2;
      out += hcl.slice(i, stop).replace(/[^\n]/g, ' ');
      i = stop;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** Index just past the string starting at `start` (a `"`), honouring backslash escapes. */
function stringEnd(text: string, start: number): number {
  let i = start + 1;
  while (i < text.length && text[i] !== '"' && text[i] !== '\n') i += text[i] === '\\' ? 2 : 1;
  return Math.min(i + 1, text.length);
}

/** The text of the block whose `{` is at `open`, with nested blocks removed. */
function ownLevel(text: string, open: number): string {
  let depth = 0;
  let out = '';
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      const end = stringEnd(text, i);
      if (depth === 1) out += text.slice(i, end);
      i = end - 1;
    } else if (c === '{') depth++;
    else if (c === '}') {
      if (--depth === 0) break;
    } else if (depth === 1) out += c;
  }
  return out;
}

const MODULE_BLOCK = /(?:^|[\s;}])module\s+(?:"[^"\n]*"|[A-Za-z_][\w-]*)\s*\{/g;
const SOURCE_ATTRIBUTE = /(?:^|\n)[ \t]*source[ \t]*=[ \t]*"([^"\n]*)"/;

/** Every module `source` in the file (local or not), in order. */
export function moduleSources(hcl: string): string[] {
  const text = blankComments(hcl);
  const sources: string[] = [];
  for (const m of text.matchAll(MODULE_BLOCK)) {
    const source = SOURCE_ATTRIBUTE.exec(ownLevel(text, m.index + m[0].length - 1))?.[1];
    if (source !== undefined) sources.push(source);
  }
  return sources;
}

/** Terraform treats a source as a local path only when it starts with `./` or `../`. */
export const isLocalSource = (source: string) => source.startsWith('./') || source.startsWith('../');
