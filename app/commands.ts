// Reads a PR comment's first line as a Terrapin command. Pure: no I/O, no GitHub, no Temporal.
import { distance } from 'fastest-levenshtein';
import { checkDir, checkExtraArgs } from './extra-args.ts';
import { COMMAND_NAMES, type CommandName, type CommandParse, type ParsedCommand } from '../shared/contracts.ts';

type Flag = '-p' | '-d' | '-w';

/** Which flags each command accepts, and whether it takes extra args after `--`. */
const GRAMMAR: Record<CommandName, { flags: readonly Flag[]; extraArgs: boolean }> = {
  plan: { flags: ['-p', '-d', '-w'], extraArgs: true },
  approve: { flags: ['-p'], extraArgs: false },
  apply: { flags: ['-p'], extraArgs: false },
  unlock: { flags: [], extraArgs: false },
  cancel: { flags: [], extraArgs: false },
  drift: { flags: ['-p'], extraArgs: false },
  help: { flags: [], extraArgs: false },
  'approve-policies': { flags: ['-p'], extraArgs: false },
};

const FLAG_FIELD = { '-p': 'project', '-d': 'dir', '-w': 'workspace' } as const;
const FLAG_VALUE_NAME = { '-p': 'a project name', '-d': 'a directory', '-w': 'a workspace name' } as const;

/** `/word` followed by whitespace or the end of the line; `/path/to/file` is not a command attempt. */
const COMMAND_WORD = /^\/([a-z][a-z0-9_-]*)(?=\s|$)/i;

/** Invisible and direction-changing characters (format and control, except tab): a command hiding them is refused. */
const HIDDEN = /[\p{Cf}\p{Cc}]/gu;

export function parseComment(body: string): CommandParse {
  const line = firstLine(body);
  if (line === undefined) return { kind: 'none' };
  const hidden = hiddenCharacters(line);
  if (hidden) return hidden;
  const match = COMMAND_WORD.exec(line);
  if (!match) return { kind: 'none' };
  const word = match[1]!.toLowerCase();
  if (!isCommandName(word)) return { kind: 'unknown', word, suggestion: closestCommand(word) };
  const tokens = tokenize(line.slice(match[0].length));
  if (typeof tokens === 'string') return { kind: 'invalid', name: word, error: tokens };
  return parseArgs(word, tokens);
}

/**
 * A line that is a command once its invisible characters are removed (`/pl\u200ban`, `/apply\u202e`)
 * gets a reply saying so instead of silence, and runs nothing: what someone sees is not what was sent.
 */
function hiddenCharacters(line: string): CommandParse | undefined {
  const spaced = line.replace(/\t/g, ' ');
  const found = [...new Set(spaced.match(HIDDEN) ?? [])];
  if (found.length === 0) return undefined;
  const word = COMMAND_WORD.exec(spaced.replace(HIDDEN, ''))?.[1]?.toLowerCase();
  if (!word || !isCommandName(word)) return { kind: 'none' };
  const codes = found.map((ch) => `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`).join(', ');
  return { kind: 'invalid', name: word, error: `it contains invisible or direction-changing characters (${codes}); type it again without them` };
}

/** The trimmed first line, or undefined when the comment opens with a code fence or a quote. */
function firstLine(body: string): string | undefined {
  const trimmed = body.trimStart();
  if (trimmed.startsWith('```') || trimmed.startsWith('~~~') || trimmed.startsWith('>')) return undefined;
  return trimmed.split(/\r?\n/, 1)[0]!.trim();
}

function isCommandName(word: string): word is CommandName {
  return (COMMAND_NAMES as readonly string[]).includes(word);
}

/** Closest command by edit distance; ties go to the earlier command in COMMAND_NAMES. */
export function closestCommand(word: string): CommandName {
  let best: CommandName = COMMAND_NAMES[0]!;
  let bestDistance = Infinity;
  for (const name of COMMAND_NAMES) {
    const d = distance(word, name);
    if (d < bestDistance) [best, bestDistance] = [name, d];
  }
  return best;
}

/**
 * Splits on whitespace; single or double quotes group words and are removed (no escapes, no expansion).
 * Returns an error message for an unterminated quote.
 */
export function tokenize(text: string): string[] | string {
  const tokens: string[] = [];
  let current: string | undefined;
  let quote: string | undefined;
  for (const ch of text) {
    if (quote) {
      if (ch === quote) quote = undefined;
      else current += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      current ??= '';
    } else if (/\s/.test(ch)) {
      if (current !== undefined) tokens.push(current);
      current = undefined;
    } else {
      current = (current ?? '') + ch;
    }
  }
  if (quote) return `unterminated ${quote} quote`;
  if (current !== undefined) tokens.push(current);
  return tokens;
}

function parseArgs(name: CommandName, tokens: string[]): CommandParse {
  const grammar = GRAMMAR[name];
  const command: ParsedCommand = { name, extraArgs: [] };
  const invalid = (error: string): CommandParse => ({ kind: 'invalid', name, error });

  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (token === '--') {
      if (!grammar.extraArgs) return invalid(`/${name} does not take extra arguments after --`);
      command.extraArgs = tokens.slice(i + 1);
      break;
    }
    const flag = token.toLowerCase();
    if (flag === '-p' || flag === '-d' || flag === '-w') {
      if (!grammar.flags.includes(flag)) return invalid(flagNotAccepted(name, flag));
      const value = tokens[i + 1];
      if (value === undefined || value === '' || value.startsWith('-')) {
        return invalid(`${flag} needs ${FLAG_VALUE_NAME[flag]}`);
      }
      const field = FLAG_FIELD[flag];
      if (command[field] !== undefined) return invalid(`${flag} is given more than once`);
      command[field] = value;
      i++;
    } else if (token.startsWith('-')) {
      return invalid(`unknown option ${token} for /${name}${acceptedFlags(name)}`);
    } else {
      return invalid(`unexpected argument "${token}" for /${name}${acceptedFlags(name)}`);
    }
  }

  if (command.project !== undefined && command.dir !== undefined) return invalid('use either -p <project> or -d <dir>, not both');
  if (command.workspace !== undefined && command.dir === undefined) return invalid('-w <workspace> needs -d <dir>');
  if (command.dir !== undefined) {
    const dir = checkDir(command.dir);
    if (!dir.ok) return invalid(dir.error);
    command.dir = dir.dir;
  }
  // With -p the project's dir is unknown here: -var-file is checked from the root, and again with the
  // project's dir once the configuration is read.
  const extra = checkExtraArgs(command.extraArgs, { projectDir: command.dir ?? '.' });
  if (!extra.ok) return invalid(extra.error);
  command.extraArgs = extra.args;
  return { kind: 'command', command };
}

function flagNotAccepted(name: CommandName, flag: Flag): string {
  const accepted = GRAMMAR[name].flags;
  return accepted.length === 0 ? `/${name} takes no options (got ${flag})` : `/${name} does not accept ${flag}${acceptedFlags(name)}`;
}

function acceptedFlags(name: CommandName): string {
  const { flags, extraArgs } = GRAMMAR[name];
  if (flags.length === 0) return `; it takes no options`;
  const usage: Record<Flag, string> = { '-p': '-p <project>', '-d': '-d <dir>', '-w': '-w <workspace>' };
  return `; usage: /${name} ${flags.map((f) => `[${usage[f]}]`).join(' ')}${extraArgs ? ' [-- extra args]' : ''}`;
}
