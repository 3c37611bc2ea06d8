// Checks what PR commenters may pass to terraform: `/plan -d <dir>` and the arguments after `--`.
// Pure. Terraform runs without a shell (execa with an argument array), so `$(…)`, `;` or backticks in a
// value are plain characters; the risks are options that redirect state, plans, plugins or the working
// directory, paths that leave the checkout, and control characters. Everything not listed is refused.
import { posix } from 'node:path';

export type ExtraArgsCheck = { ok: true; args: string[] } | { ok: false; error: string };
export type DirCheck = { ok: true; dir: string } | { ok: false; error: string };

type ValueKind = 'address' | 'var' | 'var-file' | 'bool' | 'count' | 'duration';
/** 'switch': a boolean flag that may stand alone (`-refresh-only`) or take `=true|false`. */
type Kind = ValueKind | 'switch';

const ALLOWED: Record<string, Kind> = {
  target: 'address',
  replace: 'address',
  var: 'var',
  'var-file': 'var-file',
  refresh: 'bool',
  'refresh-only': 'switch',
  parallelism: 'count',
  'lock-timeout': 'duration',
  'compact-warnings': 'switch',
};

export const ALLOWED_USAGE =
  '-target=<address>, -replace=<address>, -var=<name>=<value>, -var-file=<path in the repository>, ' +
  '-refresh=<true|false>, -refresh-only, -parallelism=<n>, -lock-timeout=<duration>, -compact-warnings';

/** Options people try on purpose, with the reason they are refused. */
const REFUSED: Record<string, string> = {
  chdir: 'Terrapin runs terraform in the project directory; use /plan -d <dir> to pick another',
  state: 'the state comes from the backend in the configuration',
  'state-out': 'the state comes from the backend in the configuration',
  backup: 'the state comes from the backend in the configuration',
  'backend-config': 'the backend comes from the configuration',
  out: 'Terrapin chooses where the plan is saved',
  'plugin-dir': 'providers come from the registry and the worker’s plugin cache',
  destroy: 'a plan that destroys everything cannot be asked for in a comment; remove the resources in the pull request instead',
  lock: 'Terrapin always holds the state lock while it plans',
  input: 'Terrapin runs terraform without interactive input',
};

const MAX_PARALLELISM = 256;
const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;
/** Go durations as terraform parses them, restricted to whole units: 30s, 5m, 1m30s. */
const DURATION = /^(0|(\d+(ms|s|m|h))+)$/;
// NUL would cut the argument in the OS; newlines (also U+0085, U+2028/9) forge lines in logs and
// comments; bidi overrides make text read differently from what runs.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
/** %2e, %2f and %5c: '.', '/' and '\' in URL encoding. */
const URL_ENCODED = /%(2e|2f|5c)/i;
/** Our plan outputs and git's internals sit in the checkout but are not configuration. */
const PRIVATE_DIRS = new Set(['.git', '.terrapin']);

/**
 * Refuses anything outside the allowlist; returns the arguments in one canonical `-name[=value]` token
 * each, so terraform sees exactly what was checked (`-var x=1` becomes `-var=x=1`). `projectDir` is
 * the project's directory relative to the repository root: -var-file paths are resolved from it.
 */
export function checkExtraArgs(args: readonly string[], opts: { projectDir?: string } = {}): ExtraArgsCheck {
  const projectDir = opts.projectDir ?? '.';
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const token = args[i]!;
    if (CONTROL.test(token)) return refuse(`${JSON.stringify(token)} contains a control character (such as NUL or a newline)`);
    const match = /^--?([^-=][^=]*)(?:=(.*))?$/s.exec(token);
    if (!match) {
      return refuse(`unexpected argument ${token || '""'}: extra arguments are options, one of ${ALLOWED_USAGE}`);
    }
    const name = match[1]!;
    let value = match[2];
    const kind = ALLOWED[name];
    if (kind === undefined) {
      const reason = REFUSED[name];
      return refuse(`${token} is not allowed${reason ? `: ${reason}` : ''}. Allowed: ${ALLOWED_USAGE}`);
    }
    if (kind === 'switch') {
      if (value !== undefined && value !== 'true' && value !== 'false') return refuse(`-${name} takes no value or =true / =false, not ${token}`);
      out.push(value === undefined ? `-${name}` : `-${name}=${value}`);
      continue;
    }
    // Like terraform's flag parser, a value may be the next argument; booleans never take one that way.
    if (value === undefined && kind !== 'bool') {
      const next = args[i + 1];
      if (next === undefined || next.startsWith('-')) return refuse(`-${name} needs a value: ${usageOf(name)}`);
      if (CONTROL.test(next)) return refuse(`${JSON.stringify(next)} contains a control character (such as NUL or a newline)`);
      value = next;
      i++;
    }
    const checked = checkValue(name, kind, value, projectDir);
    if (typeof checked !== 'string') return checked;
    out.push(`-${name}=${checked}`);
  }
  return { ok: true, args: out };
}

function refuse(error: string): { ok: false; error: string } {
  return { ok: false, error };
}

function usageOf(name: string): string {
  return ALLOWED_USAGE.split(', ').find((u) => u.startsWith(`-${name}=`)) ?? `-${name}`;
}

/** The value to pass on, or the refusal. */
function checkValue(name: string, kind: ValueKind, value: string | undefined, projectDir: string): string | { ok: false; error: string } {
  const bad = (why: string) => refuse(`-${name}${value === undefined ? '' : `=${value}`} ${why}`);
  switch (kind) {
    case 'address':
      return value ? value : bad('needs a resource address');
    case 'var': {
      const eq = value?.indexOf('=') ?? -1;
      if (!value || eq < 0) return bad('needs the form -var=<name>=<value>');
      if (!VAR_NAME.test(value.slice(0, eq))) return bad(`has an invalid variable name "${value.slice(0, eq)}"`);
      return value;
    }
    case 'var-file': {
      if (!value) return bad('needs a path');
      const checked = checkRepoPath(value, projectDir, 'file');
      return checked.ok ? posix.relative(posix.normalize(projectDir), checked.path) || '.' : refuse(`-var-file: ${checked.error}`);
    }
    case 'bool':
      return value === 'true' || value === 'false' ? value : bad('needs =true or =false');
    case 'count':
      return /^[1-9]\d*$/.test(value ?? '') && Number(value) <= MAX_PARALLELISM ? value! : bad(`needs a whole number from 1 to ${MAX_PARALLELISM}`);
    case 'duration':
      return DURATION.test(value ?? '') ? value! : bad('needs a duration such as 30s, 5m or 1m30s');
  }
}

/**
 * A directory for `-d`, relative to the repository root; returns it normalised ('.' for the root,
 * no './' or trailing '/').
 */
export function checkDir(dir: string): DirCheck {
  if (dir === '') return refuse('the directory is empty');
  const checked = checkRepoPath(dir, '.', 'directory');
  return checked.ok ? { ok: true, dir: checked.path } : checked;
}

/**
 * Checks `path` (relative to `base`, itself relative to the repository root) stays inside the
 * repository; returns it normalised and relative to the root. Lexical only: symlinks are the checkout's
 * concern.
 */
function checkRepoPath(path: string, base: string, what: 'file' | 'directory'): { ok: true; path: string } | { ok: false; error: string } {
  const named = `${what} ${JSON.stringify(path)}`;
  if (CONTROL.test(path)) return refuse(`${named} contains a control character (such as NUL or a newline)`);
  if (path.includes('\\')) return refuse(`${named} uses backslashes; separate directories with /`);
  if (path.startsWith('/') || /^[A-Za-z]:/.test(path)) return refuse(`${named} is absolute; give a path relative to the repository root`);
  if (path.startsWith('~')) return refuse(`${named} starts with ~, which is not expanded; give a path relative to the repository root`);
  if (URL_ENCODED.test(path)) return refuse(`${named} looks URL-encoded; write it as plain text`);
  const normal = posix.normalize(posix.join(base, path)).replace(/\/+$/, '') || '.';
  if (normal === '..' || normal.startsWith('../')) return refuse(`${named} leaves the repository`);
  const privateDir = normal.split('/').find((segment) => PRIVATE_DIRS.has(segment.toLowerCase()));
  if (privateDir) return refuse(`${named} is inside ${privateDir}, which holds no configuration`);
  return { ok: true, path: normal };
}
