// Runs one scenario of test/scenarios/<name>/ on a harness (real Temporal, worker, git, terraform; GitHub
// mocked at HTTP) and compares every text the bot wrote — comments and issue bodies, in order — with the
// scenario's expected/*.md files. The format of scenario.yml is described in test/scenarios/README.md.
//
// Used by scenarios.test.ts (one test per scenario) and by scripts/record-histories.ts (which records
// the workflow histories each scenario leaves behind). Uses vitest's `expect`, which works outside vitest.
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { expect } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  DRIFT_LABEL,
  deployStateQuery,
  deployWorkflowId,
  driftReconcileId,
  prWorkflowId,
  pushWorkflowId,
  type DeployStatus,
  type PrStatus,
  type RepoRef,
} from '../../shared/contracts.ts';
import { GATE_LABEL, operatorWorkflowId, type OperatorKind } from '../../shared/operator.ts';
import { startOperatorRun, waitForOperatorRun, type StartedOperatorRun } from '../../operator/start.ts';
import { listProjects } from '../../operator/projects.ts';
import { createFixtureRepo, readState, type FixtureRepo } from '../helpers/fixture-repo.ts';
import { GithubMock } from '../helpers/github-mock.ts';
import { expectGoldenFile } from '../helpers/golden.ts';
import { checkRunActionEvent, issueCommentEvent, issueOnlyCommentEvent, pullRequestEvent, pushEvent, reviewSubmittedEvent, type TestPr } from '../helpers/payloads.ts';
import type { Harness } from '../helpers/workflow-harness.ts';

export const SCENARIOS_DIR = fileURLToPath(new URL('./', import.meta.url));
export const OWNER = 'acme';
const INSTALLATION_ID = 42;
/** Written in fixture files where the absolute state dir goes (local backends live outside checkouts). */
const STATE_DIR_TOKEN = '__STATE_DIR__';
const WAIT_MS = 90_000;

// ---- the scenario file ------------------------------------------------------------------------

type Matcher = string;

export interface ExpectedCall {
  check?: 'create' | 'update';
  name?: string;
  status?: string;
  conclusion?: string;
  title?: Matcher;
  summary?: Matcher;
  /** A comment, compared with expected/<file>; on the step's PR or issue unless `on` says otherwise. */
  comment?: string;
  on?: number;
  /** Replace ```text blocks (terraform's apply log, whose lines come in varying order) before comparing. */
  elide?: boolean;
  /** Lines the comment must contain (checked on the raw text, before normalizing or eliding). */
  lines?: string[];
  /** An issue opened with the label and exactly `title`; its body is compared with expected/<file>. */
  createIssue?: string;
  /** createIssue: its label (default the drift issues' terrapin:drift). */
  issueLabel?: string;
  number?: number;
  closeIssue?: number;
  /** GET issues: the open drift issues, by number, as this scenario created them. */
  openIssues?: number[];
  label?: { name: string; exists: boolean };
  reaction?: number | true;
  permission?: 'admin' | 'write' | 'read' | 'none';
  login?: string;
  prCommits?: number | true;
  commits?: Array<{ author?: string | null; committer?: string | null }>;
  minimize?: true;
  pullsOfCommit?: { sha: string; pulls: Array<{ number: number; merged: boolean }> };
  /** The open PRs into a branch, as a push to it lists them. */
  openPulls?: { base: string; numbers: number[] };
  pullRequest?: number;
  /** The App's lookup of the repository (installation, clone URL), as the operator tools' reads make it. */
  repository?: true;
}

interface Until {
  /** The PR workflow: `done` waits for its result; `deploys: waiting` until a deploy it follows waits. */
  pr?: number;
  done?: boolean;
  deploys?: 'waiting';
  /** A deploy workflow (by project): until it reaches `phase`, or is idle with `deployed` runs in its history. */
  deploy?: string;
  phase?: NonNullable<DeployStatus['current']>['phase'];
  history?: number;
  /** The drift reconcile workflow of the project: its result. */
  reconcile?: string;
  /** The drift check of the project started by `/drift` (drift-run:…): its result, matched with `result`. */
  driftRun?: string;
  /** An operator run (operator:…:<project>:<kind>): its result, matched with `result`. */
  operator?: { project: string; kind: OperatorKind };
  result?: unknown;
}

interface StepBase {
  note?: string;
  expect?: Array<ExpectedCall | string>;
  until?: Until | Until[];
  /** State files (by name, without .tfstate) → resource name → `input` value, after the step. */
  state?: Record<string, Record<string, unknown>>;
}

export interface Step extends StepBase {
  /** Commits the files under <scenario>/<files> (and deletes `delete`) on `branch`; the sha is known as `as`. */
  commit?: { branch?: string; files?: string; delete?: string[]; as?: string; message?: string };
  open?: number;
  synchronize?: number;
  close?: number;
  /** Merges the PR's branch into main (a merge commit, known as merge-<n>) and sends `closed` + merged. */
  merge?: number;
  comment?: { on: number; by: string; body: string };
  /** A comment on an issue this scenario's bot opened (a drift issue). */
  issueComment?: { on: number; by: string; body: string };
  review?: { on: number; by: string; state: 'approved' | 'commented' | 'changes_requested' };
  /** A check-run button: `workflow` is the check's external id (e.g. deploy:web → deploy:acme/<repo>:web). */
  button?: { by: string; action: string; workflow: string; sha: string; pr?: number };
  /** A push to main of `sha` (default: main's newest commit); `before` a known commit (default: all zeros). */
  push?: { by: string; sha?: string; before?: string; result?: unknown };
  /** A drift check of the project at main's head, as its schedule starts it; `result` is matched. */
  drift?: { project: string; result?: unknown };
  /**
   * An operator's run from the CLI's library (operator/start.ts): the step ends once it started (apply and
   * destroy: once their approval issue is open), or, with `result`, once it ended with that result.
   */
  operator?: { kind: OperatorKind | 'drift'; project: string; withDependents?: boolean; as?: string; result?: unknown };
  /** The repository's projects as the operator tools read them (operator/projects.ts); `result` is matched. */
  projects?: { result?: unknown };
  /** terraform apply run by hand (out of band) from main with the files of <scenario>/<files> laid over it. */
  applyByHand?: { files?: string; dir?: string; vars?: Record<string, string> };
  /**
   * A run of the webhook reconciler (workflows/webhook-reconcile.ts) as its Schedule starts it: `log` is the
   * App's delivery log, `redeliver` the delivery ids it must ask GitHub to send again; the sweep finds this
   * repository, where no PR workflow runs. `result` is matched.
   */
  reconcileWebhooks?: { log: Array<{ id: number; status: number; redelivery?: boolean; guid?: string }>; redeliver?: number[]; result?: unknown };
}

export interface ScenarioFile {
  description: string;
  /** Terraform applied by hand from main before the first step (what was deployed before), in order. */
  setup?: { apply?: Array<{ dir: string; vars?: Record<string, string> }> };
  prs?: Record<string, { branch: string; author?: string }>;
  steps: Step[];
}

export interface LoadedScenario {
  name: string;
  dir: string;
  file: ScenarioFile;
}

export function listScenarios(): LoadedScenario[] {
  return readdirSync(SCENARIOS_DIR)
    .filter((name) => existsSync(join(SCENARIOS_DIR, name, 'scenario.yml')))
    .sort()
    .map(loadScenario);
}

export function loadScenario(name: string): LoadedScenario {
  const dir = join(SCENARIOS_DIR, name);
  const file = parseYaml(readFileSync(join(dir, 'scenario.yml'), 'utf8')) as ScenarioFile;
  if (!Array.isArray(file?.steps) || file.steps.length === 0) throw new Error(`${name}/scenario.yml has no steps`);
  return { name, dir, file };
}

// ---- running it -------------------------------------------------------------------------------

const ACTIONS = ['commit', 'open', 'synchronize', 'close', 'merge', 'comment', 'issueComment', 'review', 'button', 'push', 'drift', 'operator', 'projects', 'applyByHand', 'reconcileWebhooks'] as const;

function actionOf(step: Step): (typeof ACTIONS)[number] {
  const found = ACTIONS.filter((a) => step[a] !== undefined);
  if (found.length !== 1) throw new Error(`a step has exactly one action of ${ACTIONS.join(', ')}; got ${found.join(', ') || 'none'}`);
  return found[0]!;
}

/** Files under dir (relative paths), with the state dir token replaced. */
function readTree(dir: string, stateDir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const entry of readdirSync(d)) {
      const abs = join(d, entry);
      if (statSync(abs).isDirectory()) walk(abs);
      else out[relative(dir, abs)] = readFileSync(abs, 'utf8').split(STATE_DIR_TOKEN).join(stateDir);
    }
  };
  walk(dir);
  return out;
}

/**
 * Runs the scenario on `h`, asserting each step. `tmp` must be a dir the harness lets terraform write
 * (`h.allowRunnerPath`): state files and scratch checkouts go below it.
 */
export async function runScenario(h: Harness, scenario: LoadedScenario, tmp: string): Promise<void> {
  const { name, dir: scenarioDir, file } = scenario;
  const repoName = name;
  const work = await mkdtemp(join(tmp, `${name}-`));
  const stateDir = join(work, 'states');
  await mkdir(stateDir);
  const repo = await createFixtureRepo(readTree(join(scenarioDir, 'repo'), stateDir));
  try {
    await new Runner(h, scenario, repo, repoName, work, stateDir).run(file);
  } finally {
    await repo.cleanup();
  }
}

class Runner {
  private readonly gh: GithubMock;
  private readonly where: RepoRef;
  /** Known commits by name (main, feature, merge-1…), for payloads and for normalizing texts. */
  private readonly shas = new Map<string, string>();
  private readonly commitCounts = new Map<string, number>();
  private readonly prs = new Map<number, TestPr>();
  private readonly issues = new Map<number, { title: string; body: string; label: string }>();
  private nextCommentId = 1001;
  private reconcileRuns = 0;
  /** main's newest commit (an alias, not a placeholder of its own: texts name it by its own name). */
  private mainHead = '';

  private readonly h: Harness;
  private readonly scenario: LoadedScenario;
  private readonly repo: FixtureRepo;
  private readonly repoName: string;
  private readonly work: string;
  private readonly stateDir: string;

  constructor(h: Harness, scenario: LoadedScenario, repo: FixtureRepo, repoName: string, work: string, stateDir: string) {
    this.h = h;
    this.scenario = scenario;
    this.repo = repo;
    this.repoName = repoName;
    this.work = work;
    this.stateDir = stateDir;
    this.gh = new GithubMock(OWNER, repoName);
    this.where = { owner: OWNER, name: repoName, installationId: INSTALLATION_ID, cloneUrl: repo.cloneUrl };
  }

  async run(file: ScenarioFile): Promise<void> {
    this.mainHead = await this.repo.head();
    this.shas.set('main', this.mainHead);
    this.commitCounts.set('main', 1);
    for (const [n, pr] of Object.entries(file.prs ?? {})) {
      const number = Number(n);
      this.prs.set(number, {
        owner: OWNER,
        repo: this.repoName,
        number,
        installationId: INSTALLATION_ID,
        cloneUrl: this.repo.cloneUrl,
        headSha: '',
        headRef: pr.branch,
        baseRef: 'main',
        baseSha: '',
        author: pr.author ?? 'alice',
      });
    }
    for (const a of file.setup?.apply ?? []) await this.terraformApply(await this.scratchClone('main'), a.dir, a.vars);
    for (const [i, step] of file.steps.entries()) {
      try {
        await this.step(step);
      } catch (err) {
        const what = step.note ?? JSON.stringify({ [actionOf(step)]: step[actionOf(step)] });
        (err as Error).message = `${this.scenario.name}, step ${i + 1} (${what}): ${(err as Error).message}`;
        throw err;
      }
    }
    this.gh.assertNoUnexpected();
  }

  private sha(name: string): string {
    const sha = name === 'main-head' ? this.mainHead : this.shas.get(name);
    if (!sha) throw new Error(`no commit known as ${name}; known: ${[...this.shas.keys()].join(', ')}`);
    return sha;
  }

  private pr(number: number): TestPr {
    const pr = this.prs.get(number);
    if (!pr) throw new Error(`PR ${number} is not declared under prs:`);
    return pr;
  }

  /** The PR as its webhooks describe it now: head and base are the branches' current commits. */
  private async freshPr(number: number): Promise<TestPr> {
    const pr = this.pr(number);
    pr.headSha = await this.repo.head(pr.headRef);
    if (!pr.baseSha) pr.baseSha = await this.repo.head('main');
    return pr;
  }

  /** Placeholders for every known commit: full shas first, then their 7-character forms. */
  private known(): Record<string, string> {
    const entries = [...this.shas.entries()];
    return Object.fromEntries([
      ...entries.map(([n, sha]) => [`<${n}-sha>`, sha]),
      ...entries.map(([n, sha]) => [`<${n}>`, sha.slice(0, 7)]),
      ['<states>', this.stateDir],
    ]);
  }

  private async step(step: Step): Promise<void> {
    const callsBefore = this.gh.calls.length;
    const expected = this.register(step);
    const action = actionOf(step);
    let wait: () => Promise<unknown> = async () => {};

    switch (action) {
      case 'commit': {
        const c = step.commit!;
        const branch = c.branch ?? 'main';
        const files: Record<string, string | null> = c.files ? readTree(join(this.scenario.dir, c.files), this.stateDir) : {};
        for (const d of c.delete ?? []) files[d] = null;
        const sha = await this.repo.commit(files, { branch, message: c.message });
        const count = (this.commitCounts.get(branch) ?? 0) + 1;
        this.commitCounts.set(branch, count);
        this.shas.set(c.as ?? (count > 1 ? `${branch}-${count}` : branch), sha);
        if (branch === 'main') this.mainHead = sha;
        break;
      }
      case 'open':
      case 'synchronize': {
        const number = step[action]!;
        const pr = await this.freshPr(number);
        const id = randomUUID();
        await this.h.receive('pull_request', pullRequestEvent(action === 'open' ? 'opened' : 'synchronize', pr), id);
        wait = () => this.prQuiet(number, id);
        break;
      }
      case 'close': {
        const pr = await this.freshPr(step.close!);
        await this.h.receive('pull_request', pullRequestEvent('closed', pr));
        wait = () => this.prDone(pr.number);
        break;
      }
      case 'merge': {
        const pr = await this.freshPr(step.merge!);
        const mergeSha = await this.repo.merge(pr.headRef);
        this.shas.set(`merge-${pr.number}`, mergeSha);
        this.mainHead = mergeSha;
        await this.h.receive('pull_request', pullRequestEvent('closed', pr, { merged: true, mergeCommitSha: mergeSha, sender: 'bob' }));
        wait = () => this.prDone(pr.number);
        break;
      }
      case 'comment': {
        const c = step.comment!;
        const pr = await this.freshPr(c.on);
        const id = randomUUID();
        await this.h.receive('issue_comment', issueCommentEvent(pr, c.body, { login: c.by, commentId: this.commentIdFor(step) }), id);
        wait = () => this.prQuiet(c.on, id);
        break;
      }
      case 'issueComment': {
        const c = step.issueComment!;
        const issue = this.issues.get(c.on);
        if (!issue) throw new Error(`issue ${c.on} was not opened by this scenario`);
        const who = { owner: OWNER, repo: this.repoName, installationId: INSTALLATION_ID, cloneUrl: this.repo.cloneUrl, author: 'alice' };
        await this.h.receive('issue_comment', issueOnlyCommentEvent(who, { number: c.on, title: issue.title, labels: [issue.label] }, c.body, { login: c.by, commentId: this.commentIdFor(step) }));
        break;
      }
      case 'review': {
        const r = step.review!;
        const pr = await this.freshPr(r.on);
        const id = randomUUID();
        await this.h.receive('pull_request_review', reviewSubmittedEvent(pr, { login: r.by, state: r.state, commitId: pr.headSha }), id);
        wait = () => this.prQuiet(r.on, id);
        break;
      }
      case 'button': {
        const b = step.button!;
        const [kind, rest] = [b.workflow.slice(0, b.workflow.indexOf(':')), b.workflow.slice(b.workflow.indexOf(':') + 1)];
        const externalId = kind === 'deploy' ? deployWorkflowId(this.where, rest) : prWorkflowId(OWNER, this.repoName, Number(rest));
        const pr: TestPr = b.pr ? await this.freshPr(b.pr) : { ...this.where, repo: this.repoName, number: 0, headSha: '', headRef: 'main', baseRef: 'main', baseSha: '', author: b.by };
        await this.h.receive('check_run', checkRunActionEvent(pr, b.action, { login: b.by, externalId, headSha: this.sha(b.sha) }));
        break;
      }
      case 'push': {
        const p = step.push!;
        const after = this.sha(p.sha ?? 'main-head');
        const before = p.before ? this.sha(p.before) : '0'.repeat(40);
        await this.h.receive('push', pushEvent({ owner: OWNER, repo: this.repoName, installationId: INSTALLATION_ID, cloneUrl: this.repo.cloneUrl }, { before, after, login: p.by }));
        wait = async () => {
          const result = await this.h.env.client.workflow.getHandle(pushWorkflowId(this.where, after)).result();
          if (p.result !== undefined) expect(result).toEqual(p.result);
        };
        break;
      }
      case 'drift': {
        const d = step.drift!;
        const run = await this.h.env.client.workflow.start('driftWorkflow', {
          workflowId: `drift-run:${OWNER}/${this.repoName}:${d.project}`,
          taskQueue: this.h.taskQueue,
          args: [{ repo: this.where, project: d.project }],
        });
        wait = async () => {
          const result = await run.result();
          if (d.result !== undefined) expect(result).toMatchObject(d.result as object);
        };
        break;
      }
      case 'operator': {
        const o = step.operator!;
        const started: StartedOperatorRun = await startOperatorRun(
          { client: this.h.env.client, taskQueue: this.h.taskQueue },
          { repo: { ...this.where, defaultBranch: 'main' }, project: o.project, kind: o.kind, ...(o.withDependents ? { withDependents: true } : {}), ...(o.as ? { actor: o.as } : {}) },
        );
        wait = async () => {
          if (o.result === undefined) return;
          expect((await waitForOperatorRun(this.h.env.client, started)).result).toMatchObject(o.result as object);
        };
        break;
      }
      case 'projects': {
        const read = listProjects({ client: this.h.env.client, taskQueue: this.h.taskQueue }, `${OWNER}/${this.repoName}`);
        wait = async () => {
          const graph = await read;
          if (step.projects!.result !== undefined) expect(graph).toMatchObject(step.projects!.result as object);
        };
        break;
      }
      case 'reconcileWebhooks': {
        const r = step.reconcileWebhooks!;
        this.gh.hookDeliveries(r.log).sweepListing(this.repo.cloneUrl);
        for (const id of r.redeliver ?? []) this.gh.redeliver(id);
        const run = await this.h.env.client.workflow.start('webhookReconcileWorkflow', {
          workflowId: `webhook-reconcile-${++this.reconcileRuns}`,
          taskQueue: this.h.taskQueue,
          args: [{}],
        });
        wait = async () => {
          const result = await run.result();
          if (r.result !== undefined) expect(result).toMatchObject(r.result as object);
        };
        break;
      }
      case 'applyByHand': {
        const a = step.applyByHand!;
        const clone = await this.scratchClone('main');
        if (a.files) for (const [path, text] of Object.entries(readTree(join(this.scenario.dir, a.files), this.stateDir))) await writeFile(join(clone, path), text);
        await this.terraformApply(clone, a.dir ?? '.', a.vars);
        break;
      }
    }

    try {
      await this.settle();
      // The step's own wait (its PR workflow handled the event, a close ended it, a push or drift run
      // finished), unless `until` says what to wait for instead.
      if (step.until === undefined || action === 'push' || action === 'drift' || action === 'operator' || action === 'projects' || action === 'reconcileWebhooks') await this.watch(wait());
      for (const u of [step.until ?? []].flat()) await this.watch(this.until(u));
    } finally {
      // SCENARIO_TRACE=1 prints each step's GitHub calls: a help when writing a scenario's expectations.
      if (process.env.SCENARIO_TRACE) console.log(`${this.scenario.name} ${action}:\n${this.gh.calls.slice(callsBefore).map(traceLine).join('\n')}`);
    }
    this.gh.assertNoUnexpected();
    this.compareTexts(step, expected, callsBefore);
    for (const [stateName, resources] of Object.entries(step.state ?? {})) expect(await this.stateInputs(stateName), `state ${stateName}`).toEqual(resources);
  }

  private readonly commentIds = new WeakMap<Step, number>();
  private commentIdFor(step: Step): number {
    let id = this.commentIds.get(step);
    if (id === undefined) {
      id = this.nextCommentId++;
      this.commentIds.set(step, id);
    }
    return id;
  }

  /** The step's PR or issue number (for comments and reactions without an explicit one). */
  private target(step: Step): number | undefined {
    return step.comment?.on ?? step.issueComment?.on ?? step.review?.on ?? step.open ?? step.synchronize ?? step.close ?? step.merge ?? step.button?.pr;
  }

  /** Registers the step's expected GitHub calls; returns the texts it expects, in order. */
  private register(step: Step): ExpectedCall[] {
    const texts: ExpectedCall[] = [];
    const on = (e: ExpectedCall) => {
      const n = e.on ?? this.target(step);
      if (n === undefined) throw new Error(`say on which PR or issue: ${JSON.stringify(e)}`);
      return n;
    };
    const actor = step.comment?.by ?? step.issueComment?.by ?? step.review?.by ?? step.button?.by ?? step.push?.by;
    for (const raw of step.expect ?? []) {
      const e: ExpectedCall = typeof raw === 'string' ? ({ [raw]: true } as ExpectedCall) : raw;
      const keys = ['check', 'comment', 'createIssue', 'closeIssue', 'openIssues', 'label', 'reaction', 'permission', 'prCommits', 'minimize', 'pullsOfCommit', 'openPulls', 'pullRequest', 'repository'] as const;
      const kind = keys.find((k) => e[k] !== undefined);
      switch (kind) {
        case 'check': {
          const opts = { conclusion: e.conclusion, title: matcher(e.title), summary: matcher(e.summary) };
          if (e.check === 'create') this.gh.createCheckRun(e.name!, e.status!, opts);
          else this.gh.updateCheckRun(e.name!, e.status!, opts);
          break;
        }
        case 'comment':
          this.gh.comment(on(e), () => true);
          texts.push(e);
          break;
        case 'createIssue':
          // `title` is the issue's exact title here (for check runs it is a matcher).
          this.gh.createIssue((b) => b.title === e.title && (b.labels ?? []).includes(e.issueLabel ?? DRIFT_LABEL), e.number!);
          texts.push(e);
          break;
        case 'closeIssue':
          this.gh.closeIssue(e.closeIssue!);
          break;
        case 'openIssues':
          // The issues opened by earlier steps, with the bodies the bot gave them.
          this.gh.openIssues(e.openIssues!.map((n) => ({ number: n, ...this.issues.get(n)! })));
          break;
        case 'label':
          this.gh.label(e.label!.name, e.label!.exists);
          break;
        case 'reaction':
          this.gh.reaction(e.reaction === true ? this.commentIdFor(step) : e.reaction!);
          break;
        case 'permission':
          this.gh.permission(e.login ?? actor!, e.permission!);
          break;
        case 'prCommits':
          this.gh.prCommits(e.prCommits === true ? on(e) : e.prCommits!, e.commits ?? []);
          break;
        case 'minimize':
          this.gh.minimize();
          break;
        case 'pullsOfCommit':
          this.gh.pullsOfCommit(this.sha(e.pullsOfCommit!.sha), e.pullsOfCommit!.pulls);
          break;
        case 'openPulls':
          this.gh.openPulls(e.openPulls!.base, e.openPulls!.numbers);
          break;
        case 'pullRequest': {
          const pr = this.pr(e.pullRequest!);
          this.gh.pullRequest(pr.number, { headSha: pr.headSha, headRef: pr.headRef, baseSha: pr.baseSha, baseRef: pr.baseRef, cloneUrl: pr.cloneUrl, author: pr.author });
          break;
        }
        case 'repository':
          this.gh.repository(this.repo.cloneUrl, INSTALLATION_ID);
          break;
        default:
          throw new Error(`unknown expected call ${JSON.stringify(raw)}`);
      }
    }
    return texts;
  }

  /** Every comment and issue body written during the step, in order, against the expected files. */
  private compareTexts(step: Step, expected: ExpectedCall[], callsBefore: number): void {
    const written = this.gh.calls.slice(callsBefore).filter((c) => c.method === 'POST' && (c.path.endsWith('/comments') || /\/issues$/.test(c.path)));
    for (const c of written) {
      if (/\/issues$/.test(c.path)) this.issues.set(Number(expected.find((e) => e.createIssue)?.number), { title: c.body.title, body: c.body.body, label: c.body.labels?.includes(GATE_LABEL) ? GATE_LABEL : DRIFT_LABEL });
    }
    const describe = (c: (typeof written)[number]) => `${c.path}: ${String(c.body.body).split('\n').find((l: string) => l && !l.startsWith('<!--'))}`;
    expect(written.map((c) => c.path.replace(/^\/repos\/[^/]+\/[^/]+/, '')), `texts written: ${written.map(describe).join(' | ')}`).toEqual(
      expected.map((e) => (e.createIssue ? '/issues' : `/issues/${e.on ?? this.target(step)}/comments`)),
    );
    for (const [i, e] of expected.entries()) {
      const text = written[i]!.body.body as string;
      for (const line of e.lines ?? []) expect(text, `${e.comment ?? e.createIssue} contains`).toContain(line);
      const file = e.comment ?? e.createIssue!;
      expectGoldenFile(pathToFileURL(join(this.scenario.dir, 'expected', file)), text, this.known(), { elideOutput: e.elide });
    }
  }

  // ---- waiting until the workflows are done with the step ---------------------------------------

  /** Waits for every expected call; a call nobody expected fails the step at once, not at the deadline. */
  private async settle(): Promise<void> {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      try {
        return await this.gh.settled(1000);
      } catch (err) {
        const message = (err as Error).message;
        const unexpected = /\nunexpected: (.*)$/s.exec(message)?.[1]?.trim();
        if (unexpected) throw new Error(`GitHub got calls this step does not expect: ${unexpected}\n${message}`);
        if (Date.now() > deadline) throw err;
      }
    }
  }

  /** Waits for `p`; meanwhile any GitHub call nobody expected (a comment too many) fails at once. */
  private async watch<T>(p: Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setInterval> | undefined;
    const guard = new Promise<never>((_, reject) => {
      timer = setInterval(() => {
        try {
          this.gh.assertNoUnexpected();
        } catch (err) {
          reject(err);
        }
      }, 200);
    });
    try {
      return await Promise.race([p, guard]);
    } finally {
      clearInterval(timer);
    }
  }

  private async poll<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
    const deadline = Date.now() + WAIT_MS;
    let last: T | undefined;
    for (;;) {
      try {
        last = await read();
        if (ok(last)) return last;
      } catch {
        // not started yet
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
      await new Promise((r) => setTimeout(r, 150));
    }
  }

  /** The PR workflow handled the delivery and has nothing running or queued. */
  private prQuiet(number: number, deliveryId: string): Promise<PrStatus> {
    return this.poll(`PR #${number} to handle ${deliveryId}`, () => this.h.status(OWNER, this.repoName, number), (s) => s.handled.includes(deliveryId) && !s.job && s.queued === 0);
  }

  private async prDone(number: number): Promise<void> {
    await this.h.env.client.workflow.getHandle(prWorkflowId(OWNER, this.repoName, number)).result();
  }

  private async until(u: Until): Promise<void> {
    const client = this.h.env.client;
    if (u.pr !== undefined && u.done) await this.prDone(u.pr);
    else if (u.pr !== undefined && u.deploys) await this.poll(`PR #${u.pr}'s deploys`, () => this.h.status(OWNER, this.repoName, u.pr!), (s) => s.deploys?.some((d) => d.status === u.deploys) ?? false);
    else if (u.deploy !== undefined) {
      const handle = client.workflow.getHandle(deployWorkflowId(this.where, u.deploy));
      await this.poll(`deploy ${u.deploy}`, () => handle.query(deployStateQuery), (s) =>
        u.phase ? s.current?.phase === u.phase : s.history.length >= (u.history ?? 1) && !s.current,
      );
    } else if (u.reconcile !== undefined) {
      const result = await client.workflow.getHandle(driftReconcileId(this.where, u.reconcile)).result();
      if (u.result !== undefined) expect(result).toEqual(u.result);
    } else if (u.operator !== undefined) {
      const result = await client.workflow.getHandle(operatorWorkflowId(this.where, u.operator.project, u.operator.kind)).result();
      if (u.result !== undefined) expect(result).toMatchObject(u.result as object);
    } else if (u.driftRun !== undefined) {
      const result = await client.workflow.getHandle(`drift-run:${OWNER}/${this.repoName}:${u.driftRun}`).result();
      if (u.result !== undefined) expect(result).toMatchObject(u.result as object);
    } else throw new Error(`unknown until: ${JSON.stringify(u)}`);
  }

  // ---- terraform and git by hand ----------------------------------------------------------------

  private async scratchClone(branch: string): Promise<string> {
    const dir = await mkdtemp(join(this.work, 'by-hand-'));
    await execa('git', ['clone', '-q', '--branch', branch, this.repo.cloneUrl, dir]);
    return dir;
  }

  private async terraformApply(root: string, dir: string, vars: Record<string, string> = {}): Promise<void> {
    const env = { TF_IN_AUTOMATION: '1', ...Object.fromEntries(Object.entries(vars).map(([k, v]) => [`TF_VAR_${k}`, v])) };
    const tf = (...args: string[]) => execa('terraform', args, { cwd: join(root, dir), env });
    await tf('init', '-input=false', '-no-color');
    await tf('apply', '-auto-approve', '-input=false', '-no-color');
    await rm(join(root, dir, '.terraform'), { recursive: true, force: true });
  }

  private async stateInputs(name: string): Promise<Record<string, unknown>> {
    const state = await readState(join(this.stateDir, `${name}.tfstate`));
    return Object.fromEntries(state.resources.map((r) => [r.name, (r.instances[0]?.attributes.input as { value?: unknown } | undefined)?.value ?? null]));
  }
}

function traceLine(c: { method: string; path: string; body: any }): string {
  const b = c.body ?? {};
  const fields = [b.name, b.status, b.conclusion, b.output?.title, b.title, typeof b.body === 'string' ? JSON.stringify(b.body.slice(0, 80)) : undefined];
  return `  ${c.method} ${c.path.replace(/^\/repos\/[^/]+\/[^/]+/, '')} ${fields.filter((f) => f !== undefined).join(' | ')}`;
}

/** `/…/` is a regular expression; any other string must appear in the text. */
function matcher(m: string | undefined): string | RegExp | undefined {
  if (m === undefined) return undefined;
  const re = /^\/(.*)\/$/s.exec(m);
  return re ? new RegExp(re[1]!) : m;
}
