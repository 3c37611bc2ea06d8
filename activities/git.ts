// Checks a commit out into its own work dir and reads the repository's `.terrapin.yml` at that commit.
// The installation token reaches git only through GIT_CONFIG_* env (an http.extraHeader), never argv,
// the URL or .git/config, so it cannot leak through `ps`, error messages or the work dir.
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import { parseDocument, YAMLError } from 'yaml';
import type { CheckoutInput, CheckoutResult, CleanupInput, OnFailure } from './contracts.ts';
import { runCommand, type RunResult } from './process.ts';

export interface GitDeps {
  dataDir: string;
  getInstallationToken(installationId: number): Promise<string>;
}

const CONFIG_FILE = '.terrapin.yml';
const COMPLETE_MARKER = join('.git', 'terrapin-checkout-complete');
const SHA = /^[0-9a-f]{40}([0-9a-f]{24})?$/;
const SAFE_NAME = /^(?!\.{1,2}$)[A-Za-z0-9._-]+$/;

function safeName(value: string, what: string): string {
  if (!SAFE_NAME.test(value)) throw ApplicationFailure.nonRetryable(`Invalid ${what}: ${value}`, 'InvalidInput');
  return value;
}

export function prWorkRoot(dataDir: string, owner: string, repo: string, prNumber: number): string {
  if (!Number.isInteger(prNumber) || prNumber < 1) {
    throw ApplicationFailure.nonRetryable(`Invalid PR number: ${prNumber}`, 'InvalidInput');
  }
  return join(dataDir, 'work', safeName(owner, 'owner'), safeName(repo, 'repository name'), `pr-${prNumber}`);
}

const isHttp = (url: string) => /^https?:\/\//i.test(url);

/** Environment that authenticates git over http(s) as the installation, without touching any file. */
function authEnv(token: string | undefined): Record<string, string> {
  const env: Record<string, string> = { GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: 'true' };
  if (!token) return env;
  const basic = Buffer.from(`x-access-token:${token}`).toString('base64');
  return {
    ...env,
    GIT_CONFIG_COUNT: '1',
    GIT_CONFIG_KEY_0: 'http.extraHeader',
    GIT_CONFIG_VALUE_0: `Authorization: Basic ${basic}`,
  };
}

interface GitRunner {
  (cwd: string, ...args: string[]): Promise<RunResult>;
}

function gitRunner(token: string | undefined): GitRunner {
  const env = authEnv(token);
  const secrets = token ? [token, env.GIT_CONFIG_VALUE_0!.slice('Authorization: Basic '.length)] : [];
  return (cwd, ...args) => runCommand('git', args, { cwd, env, secrets });
}

function gitFailure(what: string, r: RunResult, type = 'GitFailed'): ApplicationFailure {
  // Retryable: most fetch failures are transient (network, rate limits).
  return ApplicationFailure.retryable(`${what} failed (exit ${r.exitCode}): ${r.output.trim().slice(-2000)}`, type);
}

async function resolveBranchHead(git: GitRunner, cwd: string, cloneUrl: string, branch: string): Promise<string> {
  const r = await git(cwd, 'ls-remote', '--', cloneUrl, `refs/heads/${branch}`);
  if (r.exitCode !== 0) throw gitFailure(`git ls-remote of branch ${branch}`, r);
  const sha = r.stdout.split(/\s+/)[0] ?? '';
  if (!SHA.test(sha)) throw ApplicationFailure.nonRetryable(`Branch ${branch} not found in the repository`, 'BranchNotFound');
  return sha;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function fetchCommit(git: GitRunner, workDir: string, cloneUrl: string, sha: string): Promise<void> {
  let r = await git(workDir, 'init', '-q');
  if (r.exitCode !== 0) throw gitFailure('git init', r);
  r = await git(workDir, 'fetch', '-q', '--depth', '1', '--no-tags', '--', cloneUrl, sha);
  if (r.exitCode !== 0) {
    // Some servers refuse a sha that no ref advertises; fetching every ref reaches it if it exists at all.
    const all = await git(workDir, 'fetch', '-q', '--no-tags', '--', cloneUrl, '+refs/*:refs/terrapin/*');
    if (all.exitCode !== 0) throw gitFailure(`git fetch of ${sha}`, all);
  }
  r = await git(workDir, '-c', 'advice.detachedHead=false', 'checkout', '-q', '--detach', sha);
  if (r.exitCode !== 0) {
    const missing = /reference is not a tree|did not match|unknown revision|not a commit/i.test(r.output);
    if (missing) throw ApplicationFailure.nonRetryable(`Commit ${sha} not found in the repository`, 'CommitNotFound');
    throw gitFailure(`git checkout of ${sha}`, r);
  }
}

export async function checkout(input: CheckoutInput, deps: GitDeps): Promise<CheckoutResult> {
  if (Boolean(input.sha) === Boolean(input.branch)) {
    throw ApplicationFailure.nonRetryable('checkout needs exactly one of sha or branch', 'InvalidInput');
  }
  const root = prWorkRoot(deps.dataDir, input.repo.owner, input.repo.name, input.prNumber);
  const token = isHttp(input.cloneUrl) ? await deps.getInstallationToken(input.repo.installationId) : undefined;
  const git = gitRunner(token);

  await mkdir(root, { recursive: true });
  const sha = input.sha?.toLowerCase() ?? (await resolveBranchHead(git, root, input.cloneUrl, input.branch!));
  if (!SHA.test(sha)) throw ApplicationFailure.nonRetryable(`Not a full commit sha: ${sha}`, 'InvalidInput');

  const workDir = join(root, sha);
  if (!(await exists(join(workDir, COMPLETE_MARKER)))) {
    // A dir without the marker is what an interrupted attempt left behind.
    await rm(workDir, { recursive: true, force: true });
    await mkdir(workDir, { recursive: true });
    await fetchCommit(git, workDir, input.cloneUrl, sha);
    await writeFile(join(workDir, COMPLETE_MARKER), `${new Date().toISOString()}\n`);
  }
  return { workDir, sha, ...(await readRepoConfig(workDir)) };
}

export async function removeWorkDirs(input: CleanupInput, deps: Pick<GitDeps, 'dataDir'>): Promise<void> {
  await rm(prWorkRoot(deps.dataDir, input.repo.owner, input.repo.name, input.prNumber), {
    recursive: true,
    force: true,
  });
}

export interface RepoConfig {
  onFailure: OnFailure;
  configError?: string;
}

const DEFAULT_CONFIG: RepoConfig = { onFailure: 'rollback' };

/** Reads `.terrapin.yml` from a checked-out work dir; errors come back as text, with defaults. */
export async function readRepoConfig(workDir: string): Promise<RepoConfig> {
  let text: string;
  try {
    text = await readFile(join(workDir, CONFIG_FILE), 'utf8');
  } catch {
    return { ...DEFAULT_CONFIG };
  }
  return parseRepoConfig(text);
}

function describeYamlError(err: YAMLError): string {
  const pos = err.linePos?.[0];
  const where = pos ? `line ${pos.line}, column ${pos.col}` : 'unknown position';
  const firstLine = err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
  return `${CONFIG_FILE}: ${where}: ${firstLine}`;
}

export function parseRepoConfig(text: string): RepoConfig {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) return { ...DEFAULT_CONFIG, configError: describeYamlError(doc.errors[0]!) };

  const value: unknown = doc.toJS();
  if (value === null || value === undefined) return { ...DEFAULT_CONFIG };
  if (typeof value !== 'object' || Array.isArray(value)) {
    return { ...DEFAULT_CONFIG, configError: `${CONFIG_FILE}: line 1, column 1: the top level must be a mapping` };
  }
  const onFailure = (value as Record<string, unknown>).onFailure;
  if (onFailure === undefined) return { ...DEFAULT_CONFIG };
  if (onFailure === 'rollback' || onFailure === 'none') return { onFailure };

  const node = doc.get('onFailure', true) as { range?: [number, number, number] } | undefined;
  const offset = node?.range?.[0] ?? 0;
  const { line, col } = lineColAt(text, offset);
  return {
    ...DEFAULT_CONFIG,
    configError: `${CONFIG_FILE}: line ${line}, column ${col}: onFailure must be "rollback" or "none", got ${JSON.stringify(onFailure)}`,
  };
}

function lineColAt(text: string, offset: number): { line: number; col: number } {
  const before = text.slice(0, offset).split('\n');
  return { line: before.length, col: before.at(-1)!.length + 1 };
}
