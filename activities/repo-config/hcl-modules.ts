// Finds `module "x" { source = "./…" }` in HCL text without an HCL parser. Comments and string contents
// are blanked (offsets kept), so braces or `module` inside strings and comments do not count; each module
// block is then cut out by brace matching, and `source` is read at the block's own level, so attributes
// of nested blocks are not mistaken for it. Heredocs are not understood (rare around module calls).

interface Blanked {
  /** Comments blanked. */
  text: string;
  /** Comments and string contents blanked: only structure is left. */
  structure: string;
}

function blank(hcl: string): Blanked {
  let text = '';
  let structure = '';
  let i = 0;
  const keep = (s: string, inStructure = s) => {
    text += s;
    structure += inStructure;
  };
  const spaces = (s: string) => s.replace(/[^\n]/g, ' ');
  while (i < hcl.length) {
    const c = hcl[i];
    let end = i + 1;
    if (c === '"') {
      while (end < hcl.length && hcl[end] !== '"' && hcl[end] !== '\n') end += hcl[end] === '\\' ? 2 : 1;
      end = Math.min(end + 1, hcl.length);
      const s = hcl.slice(i, end);
      keep(s, `"${spaces(s.slice(1, -1))}"`);
    } else if (c === '#' || (c === '/' && hcl[i + 1] === '/')) {
      end = hcl.indexOf('\n', i);
      if (end < 0) end = hcl.length;
      keep(spaces(hcl.slice(i, end)));
    } else if (c === '/' && hcl[i + 1] === '*') {
      end = hcl.indexOf('*/', i + 2);
      end = end < 0 ? hcl.length : end + 2;
      keep(spaces(hcl.slice(i, end)));
    } else keep(c);
    i = end;
  }
  return { text, structure };
}

/** The block whose `{` is at `open`, without its nested blocks: text taken from `text`, nesting from `structure`. */
function ownLevel({ text, structure }: Blanked, open: number): string {
  let depth = 0;
  let out = '';
  for (let i = open; i < structure.length; i++) {
    const c = structure[i];
    if (c === '{') depth++;
    else if (c === '}') {
      if (--depth === 0) break;
    } else if (depth === 1) out += text[i];
  }
  return out;
}

const MODULE_BLOCK = /(?:^|[\s;}])module\s+(?:"[^"\n]*"|[A-Za-z_][\w-]*)\s*\{/g;
const SOURCE_ATTRIBUTE = /(?:^|\n)[ \t]*source[ \t]*=[ \t]*"([^"\n]*)"/;

/** Every module `source` in the file (local or not), in order. */
export function moduleSources(hcl: string): string[] {
  const blanked = blank(hcl);
  const sources: string[] = [];
  for (const m of blanked.structure.matchAll(MODULE_BLOCK)) {
    const source = SOURCE_ATTRIBUTE.exec(ownLevel(blanked, m.index + m[0].length - 1))?.[1];
    if (source !== undefined) sources.push(source);
  }
  return sources;
}

/** Terraform treats a source as a local path only when it starts with `./` or `../`. */
export const isLocalSource = (source: string) => source.startsWith('./') || source.startsWith('../');
