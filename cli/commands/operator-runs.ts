// `terrapin plan | apply | destroy | drift -p project`: runs an operator starts at the default branch
// (operator/start.ts). Apply and destroy open a GitHub issue and wait there for an `/approve` by someone the
// repository's rules allow: the command prints its link; nothing here approves. `--wait` follows the run
// to its end and exits by its outcome.
import { execFileSync } from 'node:child_process';
import type { Command } from 'commander';
import type { RepoRef } from '../../shared/contracts.ts';
import type { OperatorRunKind } from '../../shared/operator.ts';
import { connectOperator, githubCredentials } from '../../operator/connect.ts';
import { UnavailableError } from '../../operator/errors.ts';
import { operatorRunSucceeded, repoFromGithub, startOperatorRun, waitForOperatorRun, type OperatorDeps, type OperatorRunEnd, type StartedOperatorRun } from '../../operator/start.ts';
import { EXIT, outputOf, parseRepo, usageError, type Output } from '../output.ts';

type Env = Record<string, string | undefined>;

/** How the commands reach Temporal and GitHub (operator/connect.ts); tests replace these. */
export const operatorCli = {
  async connect(env: Env = process.env): Promise<OperatorDeps & { close(): Promise<void> }> {
    const connection = await connectOperator(env);
    return { client: connection.client, taskQueue: connection.temporal.taskQueue, close: () => connection.close() };
  },
  async resolveRepo(fullName: string, env: Env = process.env): Promise<RepoRef & { defaultBranch?: string }> {
    const credentials = githubCredentials(env);
    if (!credentials) throw new UnavailableError('GitHub App credentials are missing: set APP_ID and PRIVATE_KEY (or PRIVATE_KEY_PATH), as for the server');
    return repoFromGithub(credentials, fullName);
  },
};

const WHAT: Record<OperatorRunKind, { summary: string; examples: string }> = {
  plan: {
    summary: 'plan a project at the default branch (recorded as a manual run)',
    examples: '  $ terrapin plan -p network -r acme/infra\n  $ terrapin plan -p network --wait --json',
  },
  apply: {
    summary: 'request an apply of a project at the default branch: opens an issue where an allowed /approve lets it proceed',
    examples: '  $ terrapin apply -p network -r acme/infra\n  $ terrapin apply -p network --wait',
  },
  destroy: {
    summary: 'request a destroy of a project (and, with --with-dependents, of every project that depends on it) behind an approval issue',
    examples: '  $ terrapin destroy -p app -r acme/infra\n  $ terrapin destroy -p network --with-dependents --wait',
  },
  drift: {
    summary: 'check a project for drift now, as `/drift` does',
    examples: '  $ terrapin drift -p network -r acme/infra --wait',
  },
};

interface RunOptions {
  project: string;
  repo?: string;
  ref?: string;
  wait?: boolean;
  withDependents?: boolean;
  as?: string;
}

export function registerOperatorRun(program: Command, kind: OperatorRunKind): void {
  const command = program
    .command(kind)
    .description(WHAT[kind].summary)
    .requiredOption('-p, --project <name>', 'the project, as named in .terrapin.yml')
    .option('-r, --repo <owner/repo>', 'the repository (default: the GitHub remote `origin` of this checkout)')
    .option('--ref <branch>', 'the default branch (operator runs use nothing else)')
    .option('--wait', 'follow the run to its end; the exit code says how it ended')
    .option('--as <github-login>', 'your GitHub login, recorded as the requester (who then cannot approve); default TERRAPIN_ACTOR');
  if (kind === 'destroy') command.option('--with-dependents', 'also destroy every project that depends on this one (dependents first)');
  command.addHelpText(
    'after',
    `
Examples:
${WHAT[kind].examples}
${kind === 'apply' || kind === 'destroy' ? '\nApproval happens on GitHub only: comment /approve on the issue this prints.\n' : ''}
Exit codes: 0 started (with --wait: succeeded), 1 failed or refused, 2 usage, 3 not found, 4 unavailable`,
  );
  command.action(async (opts: RunOptions, cmd: Command) => {
    const out = outputOf(cmd);
    const fullName = opts.repo ? parseRepo(opts.repo).fullName : repoFromOrigin();
    const actor = opts.as ?? process.env.TERRAPIN_ACTOR;
    const repo = await out.spin(`Looking up ${fullName}`, () => operatorCli.resolveRepo(fullName));
    const deps = await operatorCli.connect();
    try {
      const started = await out
        .spin(kind === 'apply' || kind === 'destroy' ? 'Planning and opening the approval issue' : 'Starting', () =>
          startOperatorRun(deps, { repo, project: opts.project, kind, ...(opts.withDependents ? { withDependents: true } : {}), ...(actor ? { actor } : {}), ...(opts.ref ? { ref: opts.ref } : {}) }),
        );
      if (!opts.wait) {
        report(out, fullName, opts.project, started);
        // An apply or destroy that ended before asking (refused, nothing to apply) is said now, not hidden.
        if ((kind === 'apply' || kind === 'destroy') && !started.issueUrl) return finish(out, started, await waitForOperatorRun(deps.client, started));
        return;
      }
      if (!out.json) report(out, fullName, opts.project, started);
      const end = await out.spin(`Waiting for ${started.workflowId}`, () => waitForOperatorRun(deps.client, started));
      finish(out, started, end);
    } finally {
      await deps.close();
    }
  });
}

function report(out: Output, fullName: string, project: string, started: StartedOperatorRun): void {
  if (out.json) return out.printJson(started);
  const { kind } = started;
  out.line(`${out.color.bold(kind === 'drift' ? 'Drift check' : `${kind[0]!.toUpperCase()}${kind.slice(1)}`)} of ${project} in ${fullName} started.`);
  out.line(`  run:      ${started.workflowId}`);
  if (started.issueUrl) out.line(`  approve:  ${started.issueUrl} (comment /approve there; someone the repository's rules allow)`);
}

function finish(out: Output, started: StartedOperatorRun, end: OperatorRunEnd): void {
  const ok = operatorRunSucceeded(end);
  if (out.json) out.printJson({ ...started, result: end.result });
  else if (end.kind === 'drift') {
    const r = end.result;
    out.line(`${ok ? out.color.green('✓') : out.color.red('✗')} drift check: ${r.status}${'resources' in r && r.resources.length ? ` (${r.resources.join(', ')})` : ''} at ${r.sha.slice(0, 7)}`);
  } else {
    const r = end.result;
    out.line(`${ok ? out.color.green('✓') : out.color.red('✗')} ${started.kind}: ${r.outcome}${r.reason ? ` — ${r.reason === 'dependents' ? `other projects depend on it: ${r.dependents!.join(', ')} (use --with-dependents to destroy them too)` : r.reason}` : ''}`);
    if (r.projects.length > 0) out.table(['PROJECT', 'OUTCOME', 'PLAN', 'RUN'], r.projects.map((p) => [p.project, p.outcome, p.summaryLine ?? '', p.runId ?? '']));
    if (r.approvers?.length) out.line(`approved by ${r.approvers.map((a) => `@${a}`).join(', ')}`);
  }
  const missing = end.kind === 'drift' ? end.result.status === 'no-project' : end.result.outcome === 'no-project';
  if (!ok) process.exitCode = missing ? EXIT.notFound : EXIT.failure;
}

/** owner/repo of the `origin` remote on GitHub (what `gh` does when -R is not given). */
function repoFromOrigin(): string {
  let url: string;
  try {
    url = execFileSync('git', ['remote', 'get-url', 'origin'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    throw usageError('--repo is needed here: this directory is not a git checkout with an origin remote');
  }
  const m = /[/:]([A-Za-z0-9][A-Za-z0-9-]*)\/([A-Za-z0-9._-]+?)(?:\.git)?\/?$/.exec(url);
  if (!m) throw usageError(`--repo is needed here: cannot read owner/repo from the origin remote ${url}`);
  return `${m[1]}/${m[2]}`;
}
