// Keeps one Temporal Schedule per project with `drift` configured, for one repository: created, updated
// when its cron or workflow arguments change, deleted when the project (or its `drift`) is gone.
// Schedules of configured projects are read by id, which is consistent at once; only deletion relies on
// listing, which the server's visibility store may show a moment late: a schedule created just before is
// then deleted by the next sync.
import {
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  type Client,
  type ScheduleDescription,
  type ScheduleOptionsStartWorkflowAction,
} from '@temporalio/client';
import type { DriftSettings } from '../shared/config.ts';
import { ensureSchedule } from './schedules.ts';
import type { RepoRef } from '../shared/contracts.ts';

export interface SyncDriftSchedulesInput {
  repo: RepoRef;
  /** Every project of the repository's config; those without `drift` get no schedule. */
  projects: Array<{ name: string; drift?: DriftSettings }>;
  taskQueue: string;
  /** The workflow each schedule starts, e.g. 'driftWorkflow'. */
  workflowType: string;
}

/** Project names whose schedule was created, updated or deleted. */
export interface SyncDriftSchedulesResult {
  created: string[];
  updated: string[];
  deleted: string[];
}

/** What the scheduled workflow gets: it reads the rest (reconcile, dir…) from the default branch itself. */
export interface DriftRunArgs {
  repo: RepoRef;
  project: string;
}

const schedulePrefix = (repo: RepoRef) => `drift:${repo.owner}/${repo.name}:`;
export const driftScheduleId = (repo: RepoRef, project: string) => `${schedulePrefix(repo)}${project}`;
export const driftRunWorkflowId = (repo: RepoRef, project: string) => `drift-run:${repo.owner}/${repo.name}:${project}`;

/**
 * The server turns cron expressions into calendars, so describe() cannot give the cron back: it is kept
 * in the action's memo (the schedule's own memo cannot be updated), where a changed cron shows.
 */
const CRON_MEMO = 'driftSchedule';

/** JSON with sorted keys: stored args come back with their keys in any order. */
function stable(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b))) : v,
  );
}

/** The shape of the workflow the schedules start (it lives in workflows/, which activities do not import). */
type DriftWorkflow = (args: DriftRunArgs) => Promise<unknown>;

function desiredAction(input: SyncDriftSchedulesInput, project: string, cron: string): ScheduleOptionsStartWorkflowAction<DriftWorkflow> {
  return {
    type: 'startWorkflow',
    workflowType: input.workflowType,
    taskQueue: input.taskQueue,
    workflowId: driftRunWorkflowId(input.repo, project),
    args: [{ repo: input.repo, project }],
    memo: { [CRON_MEMO]: cron },
  };
}

function isCurrent(described: ScheduleDescription, want: ReturnType<typeof desiredAction>): boolean {
  const have = described.action;
  return (
    have.type === 'startWorkflow' &&
    have.workflowType === want.workflowType &&
    have.taskQueue === want.taskQueue &&
    have.workflowId === want.workflowId &&
    stable(have.args) === stable(want.args) &&
    have.memo?.[CRON_MEMO] === want.memo?.[CRON_MEMO] &&
    described.policies.overlap === ScheduleOverlapPolicy.SKIP
  );
}

export async function syncDriftSchedules(input: SyncDriftSchedulesInput, { client }: { client: Client }): Promise<SyncDriftSchedulesResult> {
  const result: SyncDriftSchedulesResult = { created: [], updated: [], deleted: [] };
  const wanted = new Map(input.projects.flatMap((p) => (p.drift ? [[driftScheduleId(input.repo, p.name), p] as const] : [])));

  for (const [scheduleId, project] of wanted) {
    const cron = project.drift!.schedule;
    const action = desiredAction(input, project.name, cron);
    const spec = { cronExpressions: [cron] };
    const policies = { overlap: ScheduleOverlapPolicy.SKIP };
    const outcome = await ensureSchedule(client, scheduleId, { spec, action, policies }, (described) => isCurrent(described, action));
    if (outcome !== 'unchanged') result[outcome].push(project.name);
  }

  const prefix = schedulePrefix(input.repo);
  for await (const summary of client.schedule.list()) {
    if (!summary.scheduleId.startsWith(prefix) || wanted.has(summary.scheduleId)) continue;
    try {
      await client.schedule.getHandle(summary.scheduleId).delete();
      result.deleted.push(summary.scheduleId.slice(prefix.length));
    } catch (err) {
      // Deleted meanwhile (the list lags behind).
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    }
  }
  return result;
}

export function createDriftScheduleActivities(deps: { client: Client }) {
  return {
    syncDriftSchedules: (input: SyncDriftSchedulesInput) => syncDriftSchedules(input, deps),
  };
}
