// get_run: a run by the id any tool handed out — a project run (run:…), an operator's run (operator:…) or
// an on-demand drift check (drift-run:…) — told apart by its workflow's type.
import { WorkflowNotFoundError } from '@temporalio/client';
import { NotFoundError } from '../operator/errors.ts';
import { failureMessage } from '../operator/projects.ts';
import { getRun, runLog, type RunSummary } from '../operator/records.ts';
import type { DriftOutcome } from '../shared/contracts.ts';
import { OPERATOR_WORKFLOW_TYPE, operatorStatusQuery, type OperatorResult } from '../shared/operator.ts';
import { PROJECT_RUN_WORKFLOW_TYPE } from '../shared/runs.ts';
import type { McpDeps } from './server.ts';

/** The drift workflow's type (activities/drift-runs.ts), which start_drift_check's run ids name. */
const DRIFT_WORKFLOW_TYPE = 'driftWorkflow';
/** However many lines are asked for: an agent's context is not the place for a whole log. */
const MAX_TAIL_BYTES = 16_384;

export async function runView(deps: Pick<McpDeps, 'client' | 'dataDir'>, runId: string, tailLines: number): Promise<object> {
  const handle = deps.client.workflow.getHandle(runId);
  const description = await handle.describe().catch((err: unknown) => {
    throw err instanceof WorkflowNotFoundError ? new NotFoundError(`no run ${runId}`) : err;
  });
  const status = description.status.name.toLowerCase().replace(/_/g, '-');

  if (description.type === PROJECT_RUN_WORKFLOW_TYPE) {
    const { run, ...log } = await runLog(deps.client, deps.dataDir, runId);
    const { logTail: _inLog, ...record } = run;
    return { ...record, log: { ...tail(log.text, tailLines), source: log.source, file: log.file, note: log.note } };
  }

  if (description.type === OPERATOR_WORKFLOW_TYPE) {
    // A running one answers its query; a finished one is read from its result (no worker needed).
    const view =
      status === 'running'
        ? // Just started, its first workflow task not yet run: nothing to tell but that.
          await handle.query(operatorStatusQuery).catch(() => ({ phase: 'starting' as const, runs: [] as string[] }))
        : status === 'completed'
          ? { phase: 'done' as const, result: (await handle.result()) as OperatorResult }
          : { phase: 'done' as const, error: await handle.result().then(() => null, failureMessage) };
    const runIds = 'runs' in view ? view.runs : (view.result?.projects.flatMap((p) => (p.runId ? [p.runId] : [])) ?? []);
    const runs: RunSummary[] = [];
    for (const id of runIds) {
      // A run the operation names as it starts it may not exist for a moment yet.
      const found = await getRun(deps.client, id).catch((err: unknown) => {
        if (err instanceof NotFoundError) return undefined;
        throw err;
      });
      if (!found) continue;
      const { result: _result, logTail: _tail, error: _error, ...summary } = found;
      runs.push(summary);
    }
    return { runId, type: 'operator', status, ...view, runs };
  }

  if (description.type === DRIFT_WORKFLOW_TYPE) {
    const result = status === 'completed' ? ((await handle.result()) as DriftOutcome) : null;
    return { runId, type: 'drift', status, startedAt: description.startTime.toISOString(), closedAt: description.closeTime?.toISOString() ?? null, result };
  }
  throw new NotFoundError(`${runId} is not a Terrapin run`);
}

/** The last `lines` lines of a log, at most MAX_TAIL_BYTES of them. */
export function tail(text: string, lines: number): { text: string; truncated: boolean } {
  const all = text.split('\n');
  if (all.at(-1) === '') all.pop();
  let kept = all.slice(-lines).join('\n');
  if (kept.length > MAX_TAIL_BYTES) kept = kept.slice(-MAX_TAIL_BYTES);
  return { text: kept, truncated: kept.length < text.trimEnd().length };
}
