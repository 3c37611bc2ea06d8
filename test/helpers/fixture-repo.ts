// Real git repositories and terraform configurations in temp dirs, for tests of every part of Terrapin.
// Terraform fixtures use only built-ins (terraform_data, local-exec, local backend): no network needed.
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { execa } from 'execa';

export interface FixtureRepo {
  dir: string;
  /** file:// URL of the repo, usable as a clone URL. */
  cloneUrl: string;
  /** Writes (string) or deletes (null) files and commits them; returns the new commit's sha. */
  commit(files: Record<string, string | null>, opts?: { branch?: string; message?: string }): Promise<string>;
  createBranch(name: string, from?: string): Promise<void>;
  /** Merges the branch into main with a merge commit (as GitHub's merge button does); returns its sha. */
  merge(branch: string): Promise<string>;
  head(branch?: string): Promise<string>;
  cleanup(): Promise<void>;
}

const GIT_IDENTITY = {
  GIT_AUTHOR_NAME: 'Terrapin Test',
  GIT_AUTHOR_EMAIL: 'test@terrapin.invalid',
  GIT_COMMITTER_NAME: 'Terrapin Test',
  GIT_COMMITTER_EMAIL: 'test@terrapin.invalid',
};

export async function createFixtureRepo(files: Record<string, string>): Promise<FixtureRepo> {
  const dir = await mkdtemp(join(tmpdir(), 'terrapin-fixture-'));
  const git = async (...args: string[]) =>
    (await execa('git', args, { cwd: dir, env: GIT_IDENTITY })).stdout.trim();

  await git('init', '-q', '-b', 'main');
  await git('config', 'commit.gpgsign', 'false');

  const head = (branch = 'main') => git('rev-parse', `refs/heads/${branch}`);

  async function branchExists(name: string): Promise<boolean> {
    const r = await execa('git', ['show-ref', '--verify', '--quiet', `refs/heads/${name}`], { cwd: dir, reject: false });
    return r.exitCode === 0;
  }

  async function commit(changes: Record<string, string | null>, opts: { branch?: string; message?: string } = {}) {
    const branch = opts.branch ?? 'main';
    if (branch !== 'main') {
      if (await branchExists(branch)) await git('checkout', '-q', branch);
      else await git('checkout', '-q', '-b', branch);
    }
    try {
      for (const [path, content] of Object.entries(changes)) {
        const abs = join(dir, path);
        if (content === null) {
          await rm(abs, { force: true });
        } else {
          await mkdir(dirname(abs), { recursive: true });
          await writeFile(abs, content);
        }
      }
      await git('add', '-A');
      await git('commit', '-q', '--allow-empty', '-m', opts.message ?? 'test commit');
      return await git('rev-parse', 'HEAD');
    } finally {
      if (branch !== 'main') await git('checkout', '-q', 'main');
    }
  }

  const repo: FixtureRepo = {
    dir,
    cloneUrl: pathToFileURL(dir).href,
    commit,
    async createBranch(name, from = 'main') {
      await git('branch', name, from);
    },
    async merge(branch) {
      await git('merge', '-q', '--no-ff', '-m', `Merge branch ${branch}`, branch);
      return git('rev-parse', 'HEAD');
    },
    head,
    async cleanup() {
      await rm(dir, { recursive: true, force: true });
    },
  };
  await commit(files, { message: 'initial commit' });
  return repo;
}

export interface FixtureResource {
  input?: string;
  /** Adds a local-exec provisioner that fails; forces replacement so it fails on every apply. */
  failOnApply?: boolean;
  /** Value of triggers_replace: changing it makes terraform plan a replacement. */
  triggersReplace?: string;
}

export const FAIL_ON_APPLY_MESSAGE = 'terrapin-fixture: provisioner failed on purpose';

/** Quotes a value as an HCL string; `${…}` interpolations are kept on purpose. */
function hclString(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t')}"`;
}

/**
 * A main.tf with the local backend at `stateFile` (absolute), one terraform_data per resource and
 * one output per entry of `outputs` (values are HCL strings, so `${terraform_data.a.output}` works).
 */
export function terraformFixture(opts: {
  stateFile: string;
  resources: Record<string, FixtureResource>;
  outputs?: Record<string, string>;
}): string {
  const blocks = [`terraform {\n  backend "local" {\n    path = ${hclString(opts.stateFile)}\n  }\n}`];
  for (const [name, r] of Object.entries(opts.resources)) {
    const body: string[] = [];
    if (r.input !== undefined) body.push(`  input = ${hclString(r.input)}`);
    if (r.failOnApply) {
      body.push(`  triggers_replace = ${hclString(`fail-${r.triggersReplace ?? ''}`)}`);
      body.push(
        `  provisioner "local-exec" {\n    command = ${hclString(`echo '${FAIL_ON_APPLY_MESSAGE} (${name})' >&2; exit 1`)}\n  }`,
      );
    } else if (r.triggersReplace !== undefined) {
      body.push(`  triggers_replace = ${hclString(r.triggersReplace)}`);
    }
    blocks.push(`resource "terraform_data" "${name}" {\n${body.join('\n')}\n}`);
  }
  for (const [name, value] of Object.entries(opts.outputs ?? {})) {
    blocks.push(`output "${name}" {\n  value = ${hclString(value)}\n}`);
  }
  return blocks.join('\n\n') + '\n';
}

export interface TerraformState {
  serial: number;
  lineage: string;
  outputs: Record<string, { value: unknown }>;
  resources: Array<{
    mode: string;
    type: string;
    name: string;
    instances: Array<{ attributes: Record<string, unknown>; status?: string }>;
  }>;
}

export async function readState(stateFile: string): Promise<TerraformState> {
  return JSON.parse(await readFile(stateFile, 'utf8')) as TerraformState;
}
