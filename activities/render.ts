// Markdown for comments and check runs, from Handlebars templates in comment-templates/.
// Every word the bot writes lives in a template; this file only loads, renders and cuts text to size.
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { readBotFile } from './checkout-files.ts';
import Handlebars from 'handlebars';
import type { RenderRequest } from '../shared/activity-contracts.ts';
import { summarizeChanges, type ChangeSummary } from './change-summary.ts';

const TEMPLATES_DIR = fileURLToPath(new URL('../comment-templates/', import.meta.url));
const TEMPLATE_NAME = /^[a-z0-9][a-z0-9_-]*(\/[a-z0-9][a-z0-9_-]*)*$/i;

/** Wraps text in a code fence longer than any backtick run inside it, so the text cannot end the fence. */
export function fenceCode(text: string, language = ''): string {
  const longestRun = Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(Math.max(3, longestRun + 1));
  const body = text.replace(/^\n+|\n+$/g, '');
  return `${fence}${language}\n${body}\n${fence}`;
}

/** Inline code that no backtick inside the text can end; newlines become spaces. */
export function inlineCode(text: string): string {
  const flat = text.replace(/\s*\n\s*/g, ' ');
  const longestRun = Math.max(0, ...(flat.match(/`+/g) ?? []).map((run) => run.length));
  const ticks = '`'.repeat(longestRun + 1);
  const pad = flat.startsWith('`') || flat.endsWith('`') ? ' ' : '';
  return `${ticks}${pad}${flat}${pad}${ticks}`;
}

const handlebars = Handlebars.create();
// {{#fence "diff"}}{{planText}}{{/fence}}
handlebars.registerHelper('fence', function (this: unknown, ...args: unknown[]) {
  const options = args.pop() as Handlebars.HelperOptions;
  const language = typeof args[0] === 'string' ? args[0] : '';
  return fenceCode(options.fn(this), language);
});
handlebars.registerHelper('eq', (a: unknown, b: unknown) => a === b);
// {{code userText}}: text from users stays literal (no markup, no @-mentions) inside an inline code span.
handlebars.registerHelper('code', (value: unknown) => inlineCode(String(value ?? '')));

const cache = new Map<string, Handlebars.TemplateDelegate>();

/** Folders whose templates other templates include as partials, e.g. {{> (lookup this 'template') data}}. */
const PARTIAL_DIRS = ['requirements', 'partials', 'deploy'];
let partialsLoaded: Promise<void> | undefined;

function loadPartials(): Promise<void> {
  partialsLoaded ??= (async () => {
    for (const dir of PARTIAL_DIRS) {
      for (const file of await readdir(`${TEMPLATES_DIR}${dir}`)) {
        if (!file.endsWith('.md.hbs')) continue;
        handlebars.registerPartial(`${dir}/${file.slice(0, -'.md.hbs'.length)}`, await readFile(`${TEMPLATES_DIR}${dir}/${file}`, 'utf8'));
      }
    }
  })();
  return partialsLoaded;
}

async function loadTemplate(name: string): Promise<Handlebars.TemplateDelegate> {
  if (!TEMPLATE_NAME.test(name)) throw new Error(`Invalid template name: ${name}`);
  await loadPartials();
  let template = cache.get(name);
  if (!template) {
    const source = await readFile(`${TEMPLATES_DIR}${name}.md.hbs`, 'utf8');
    template = handlebars.compile(source, { noEscape: true, strict: false });
    cache.set(name, template);
  }
  return template;
}

// A file that is gone (work dir cleaned up) reads as undefined; templates say so in their words.
// Bot files only, never through a symlink planted at their name.
const readText = (path: string): Promise<string | undefined> => readBotFile(path).catch(() => undefined);

/** A plan's `terraform show -json` file as the change summary the comment shows above the plan. */
export async function readChangeSummary(path: string | undefined): Promise<ChangeSummary | undefined> {
  const text = path === undefined ? undefined : await readText(path);
  if (text === undefined) return undefined;
  try {
    return summarizeChanges(JSON.parse(text));
  } catch {
    return undefined;
  }
}

/** `files` keys whose file the templates need as more than text. */
const FILE_READERS: Record<string, (path: string) => Promise<unknown>> = { changeSummary: readChangeSummary };

export async function render(req: RenderRequest): Promise<string> {
  const template = await loadTemplate(req.template);
  const data: Record<string, unknown> = { ...req.data };
  for (const [key, path] of Object.entries(req.files ?? {})) {
    data[key] = await (Object.hasOwn(FILE_READERS, key) ? FILE_READERS[key]! : readText)(path);
  }
  return template(data).trim() + '\n';
}

// --- Cutting markdown to GitHub's size limits ------------------------------------------------------

interface OpenBlocks {
  /** The line that opened the current code fence, e.g. "```diff", or undefined outside a fence. */
  fence?: { marker: string; opener: string };
  /** Summaries of the enclosing <details>, outermost first (undefined until its <summary> is seen). */
  details: Array<string | undefined>;
}

const FENCE_LINE = /^ {0,3}(`{3,}|~{3,})(.*)$/;
/** An inline code span: a run of backticks, then text, then a run of the same length. */
const CODE_SPAN = /(?<!`)(`+)(?!`).*?(?<!`)\1(?!`)/g;

function advance(state: OpenBlocks, line: string): OpenBlocks {
  const m = FENCE_LINE.exec(line);
  if (state.fence) {
    const closes = m && m[1]![0] === state.fence.marker[0] && m[1]!.length >= state.fence.marker.length && !m[2]!.trim();
    return closes ? { details: state.details } : state;
  }
  if (m && !(m[1]![0] === '`' && m[2]!.includes('`'))) {
    return { details: state.details, fence: { marker: m[1]!, opener: line.trimStart() } };
  }
  let details = state.details;
  // Tags in order of appearance, so "<details>…</details>" on one line leaves nothing open. Not in code
  // spans: GitHub shows those literally, and their text (a resource address) may come from the PR.
  for (const tag of line.replace(CODE_SPAN, '').matchAll(/<(\/?)(details|summary)\b[^>]*>([^<]*)/gi)) {
    const closing = tag[1] === '/';
    const name = tag[2]!.toLowerCase();
    if (name === 'details') {
      details = closing ? details.slice(0, -1) : [...details, undefined];
    } else if (!closing && details.length > 0 && details.at(-1) === undefined) {
      details = [...details.slice(0, -1), tag[3]!.trim()];
    }
  }
  return details === state.details ? state : { ...state, details };
}

function closers(state: OpenBlocks): string[] {
  return [...(state.fence ? [state.fence.marker] : []), ...state.details.map(() => '</details>')];
}

function reopeners(state: OpenBlocks): string[] {
  const lines = state.details.map((summary) => `<details><summary>${summary || 'Details'} (continued)</summary>\n`);
  return state.fence ? [...lines, state.fence.opener] : lines;
}

/** Length of lines joined by newlines. */
const joinedLength = (lines: readonly string[]) =>
  lines.reduce((n, l) => n + l.length, 0) + Math.max(0, lines.length - 1);

/** Length of lines, each with a newline after it. */
const linesChars = (lines: readonly string[]) => lines.reduce((n, l) => n + l.length + 1, 0);

/** Cut index ≤ max that does not split a surrogate pair. */
function safeCut(line: string, max: number): number {
  const code = line.charCodeAt(max - 1);
  return max > 1 && code >= 0xd800 && code <= 0xdbff ? max - 1 : max;
}

/**
 * Splits markdown into parts of at most `limit` characters at line boundaries. A code fence or
 * <details> open at a cut is closed at the end of the part and reopened at the start of the next.
 */
export function splitComment(text: string, limit = 65536): string[] {
  if (text.length <= limit) return [text];
  const queue = text.split('\n');
  const parts: string[] = [];
  let state: OpenBlocks = { details: [] };
  let part = reopeners(state);
  // The part's length so far, each line counted with a newline after it: sizes cost no re-join per line.
  let partChars = linesChars(part);
  let contentLines = 0;

  const flush = () => {
    parts.push([...part, ...closers(state)].join('\n'));
    part = reopeners(state);
    partChars = linesChars(part);
    contentLines = 0;
  };

  for (let i = 0; i < queue.length; i++) {
    const line = queue[i]!;
    const next = advance(state, line);
    // The part with this line and the closers of the blocks then open, joined by newlines.
    const size = partChars + line.length + linesChars(closers(next));
    if (size <= limit) {
      part.push(line);
      partChars += line.length + 1;
      contentLines++;
      state = next;
      continue;
    }
    if (contentLines > 0) {
      flush();
      i--; // retry the line in the fresh part
      continue;
    }
    // One line longer than a whole part: hard-wrap it.
    const room = limit - partChars - linesChars(closers(state));
    const cut = room >= 1 ? safeCut(line, room) : 0;
    // The line fits but the blocks it opens do not: no cut can help, so fail instead of looping.
    if (cut < 1 || cut >= line.length) throw new RangeError(`splitComment: limit ${limit} is too small for the open blocks`);
    queue.splice(i, 1, line.slice(0, cut), line.slice(cut));
    i--;
  }
  if (contentLines > 0) parts.push(part.join('\n'));
  return parts;
}

export const CHECK_RUN_TRUNCATION_NOTE =
  '_Truncated to fit the check run: the full text is in the pull request comment._';

/** Cuts text for a check run's summary, closing open blocks and saying where the full text is. */
export function truncateForCheckRun(text: string, limit = 65535, note = CHECK_RUN_TRUNCATION_NOTE): string {
  if (text.length <= limit) return text;
  const tail = (state: OpenBlocks) => [...closers(state), '', note];
  const kept: string[] = [];
  let state: OpenBlocks = { details: [] };
  for (const line of text.split('\n')) {
    const next = advance(state, line);
    if (joinedLength([...kept, line, ...tail(next)]) > limit) {
      const room = limit - joinedLength([...kept, '', ...tail(state)]);
      if (room > 0 && kept.length === 0) kept.push(line.slice(0, safeCut(line, room)));
      break;
    }
    kept.push(line);
    state = next;
  }
  return [...kept, ...tail(state)].join('\n');
}
