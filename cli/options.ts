// Options several commands share, spelled the same everywhere (`-r owner/repo`, `-p project`).
import { execFileSync } from 'node:child_process';
import { Option } from 'commander';
import { parseRepo, usageError } from './output.ts';

export const repoOption = (description = "the repository (default: this checkout's GitHub remote)") => new Option('-r, --repo <owner/repo>', description);
export const projectOption = (description = 'the project, as named in .terrapin.yml') => new Option('-p, --project <name>', description);

/** `-r`, else the `origin` remote of the current directory's git checkout (as `gh` does). */
export function resolveRepo(value: string | undefined, cwd = process.cwd()): { owner: string; name: string; fullName: string } {
  if (value) return parseRepo(value);
  const remote = originRemote(cwd);
  const match = remote && /[/:]([A-Za-z0-9][A-Za-z0-9-]*)\/([A-Za-z0-9._-]+?)(?:\.git)?\/?$/.exec(remote);
  if (!match) throw usageError('say which repository: -r owner/repo (this directory has no GitHub remote to take it from)');
  return parseRepo(`${match[1]}/${match[2]}`);
}

function originRemote(cwd: string): string | undefined {
  try {
    return execFileSync('git', ['remote', 'get-url', 'origin'], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

/** `--kind apply,destroy` or repeated `--kind`: the list. */
export const collectKinds = (value: string, previous: string[] = []): string[] => [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];
