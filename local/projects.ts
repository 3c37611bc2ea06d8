// The projects of a local directory: `.terrapin.yml` from the working tree (the user is the reviewer and
// the operator here: no default-branch copy, no operator caps), else the Terraform roots detected in it.
import { availableParallelism } from 'node:os';
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { CONFIG_FILE, formatConfigError, parseRepoConfigFile } from '../activities/repo-config/index.ts';
import { selectProjects } from '../activities/project-selection.ts';
import type { RepoConfig, ResolvedProject } from '../shared/config.ts';

export class LocalConfigError extends Error {}

export interface LocalProjects {
  config: RepoConfig;
  /** Every project, in the configuration's order. */
  all: ResolvedProject[];
}

/** Never read as project files: Terrapin's own, terraform's downloads, VCS and package dirs. */
const SKIPPED_DIRS = new Set(['.terrapin', '.terraform', '.git', 'node_modules']);

async function readConfig(dir: string): Promise<RepoConfig> {
  const path = join(dir, CONFIG_FILE);
  const info = await lstat(path).catch(() => undefined);
  if (info && !info.isFile()) throw new LocalConfigError(`${CONFIG_FILE} is not a regular file`);
  const text = info ? await readFile(path, 'utf8') : '';
  const parsed = parseRepoConfigFile(text, { cpuCount: availableParallelism(), file: CONFIG_FILE });
  if (!parsed.config) throw new LocalConfigError(parsed.errors.map(formatConfigError).join('\n'));
  return parsed.config;
}

/** The directory's files (relative, `/`-separated): git's view when it is in a repository (ignored files left out). */
async function listFiles(dir: string): Promise<string[]> {
  const r = await execa('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: dir, reject: false, stdin: 'ignore' });
  const keep = (f: string) => !SKIPPED_DIRS.has(f.split('/')[0]!) && !f.split('/').includes('.terraform');
  if (r.exitCode === 0) {
    const listed = r.stdout.split('\0').filter(Boolean).filter(keep);
    // Deleted but still in the index: not there to read.
    const present = await Promise.all(listed.map((f) => lstat(join(dir, f)).then(() => true, () => false)));
    return listed.filter((_, i) => present[i]);
  }
  const files: string[] = [];
  const walk = async (rel: string) => {
    for (const entry of await readdir(join(dir, rel), { withFileTypes: true })) {
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        if (!SKIPPED_DIRS.has(entry.name)) await walk(path);
      } else files.push(path);
    }
  };
  await walk('');
  return files;
}

export async function readLocalProjects(dir: string): Promise<LocalProjects> {
  const config = await readConfig(dir);
  const selection = await selectProjects({ workDir: dir, config, repoFiles: config.projectsListed ? [] : await listFiles(dir) });
  return { config, all: selection.all };
}

/**
 * The projects `-p` names (all of them without it). Their upstreams are not added: a project's inputs
 * read the upstream's current state, as a PR plan of one project does.
 */
export function chooseLocal(all: ResolvedProject[], names: readonly string[]): ResolvedProject[] {
  if (names.length === 0) return all;
  const unknown = names.filter((n) => !all.some((p) => p.name === n));
  if (unknown.length) {
    const known = all.map((p) => p.name).join(', ') || 'none';
    throw new LocalConfigError(`no project named ${unknown.join(', ')} (projects: ${known})`);
  }
  return all.filter((p) => names.includes(p.name));
}
