// Check runs: create, update, and list per commit, validated as GitHub validates them.
import { notFound, route, unprocessable, type Reply, type Request, type Route } from './http.ts';
import { nodeId, now, repoKey, type StandinState } from './state.ts';
import type { StandinUser, StoredCheckRun } from './types.ts';

const CHECK_STATUSES = new Set(['queued', 'in_progress', 'completed', 'waiting', 'requested', 'pending']);
const CHECK_CONCLUSIONS = new Set(['action_required', 'cancelled', 'failure', 'neutral', 'success', 'skipped', 'stale', 'timed_out']);
const MAX_CHECK_TEXT_CHARS = 65535;

type Output = Record<string, unknown> | undefined;
type Actions = { label?: string; description?: string; identifier?: string }[] | undefined;

function checkRunJson(r: StoredCheckRun, origin: string, bot: StandinUser) {
  return {
    ...r,
    owner: undefined,
    repo: undefined,
    url: `${origin}/api/v3/repos/${r.owner}/${r.repo}/check-runs/${r.id}`,
    html_url: `${origin}/${r.owner}/${r.repo}/runs/${r.id}`,
    app: { id: 1, slug: bot.login.replace(/\[bot\]$/, ''), name: 'Terrapin' },
  };
}

function invalidState(body: Record<string, unknown>): Reply | undefined {
  if (body.status !== undefined && !CHECK_STATUSES.has(String(body.status))) return unprocessable(`Invalid status: ${String(body.status)}`, 'status');
  if (body.conclusion !== undefined && body.conclusion !== null && !CHECK_CONCLUSIONS.has(String(body.conclusion))) {
    return unprocessable(`Invalid conclusion: ${String(body.conclusion)}`, 'conclusion');
  }
  if (body.status === 'completed' && !body.conclusion) return unprocessable('Conclusion is required when status is completed', 'conclusion');
  return undefined;
}

function invalidOutput(output: Output): Reply | undefined {
  if (!output) return undefined;
  if (typeof output.title !== 'string' || typeof output.summary !== 'string') return unprocessable('output requires title and summary', 'output');
  for (const key of ['summary', 'text'] as const) {
    const text = output[key];
    if (typeof text === 'string' && text.length > MAX_CHECK_TEXT_CHARS) {
      return unprocessable(`output.${key} is too long (maximum is ${MAX_CHECK_TEXT_CHARS} characters)`, `output.${key}`);
    }
  }
  return undefined;
}

function invalidActions(actions: Actions): Reply | undefined {
  if (!actions) return undefined;
  if (actions.length > 3) return unprocessable('Only 3 actions are allowed', 'actions');
  for (const a of actions) {
    if (!a.label || a.label.length > 20) return unprocessable('action label must be 1-20 characters', 'actions');
    if (!a.description || a.description.length > 40) return unprocessable('action description must be 1-40 characters', 'actions');
    if (!a.identifier || a.identifier.length > 20) return unprocessable('action identifier must be 1-20 characters', 'actions');
  }
  return undefined;
}

/** Applies a create/update body to a check run the way GitHub does; returns an error reply if invalid. */
function applyCheckRunBody(run: StoredCheckRun, body: Record<string, unknown>): Reply | undefined {
  const output = body.output as Output;
  const actions = body.actions as Actions;
  const invalid = invalidState(body) ?? invalidOutput(output) ?? invalidActions(actions);
  if (invalid) return invalid;
  if (typeof body.name === 'string') run.name = body.name;
  if (body.status !== undefined) run.status = String(body.status);
  if (body.conclusion) {
    run.conclusion = String(body.conclusion);
    run.status = 'completed';
    run.completed_at = typeof body.completed_at === 'string' ? body.completed_at : now();
  }
  if (typeof body.external_id === 'string') run.external_id = body.external_id;
  if (typeof body.details_url === 'string') run.details_url = body.details_url;
  if (output) run.output = { title: String(output.title), summary: String(output.summary), text: typeof output.text === 'string' ? output.text : null };
  if (actions) run.actions = actions as StoredCheckRun['actions'];
  return undefined;
}

function createCheckRun(state: StandinState, { params: [o, r], body, origin }: Request): Reply {
  const b = (body ?? {}) as Record<string, unknown>;
  if (typeof b.name !== 'string' || !b.name) return unprocessable('Invalid request.\n\n"name" wasn\'t supplied.', 'name');
  if (typeof b.head_sha !== 'string' || !/^[0-9a-f]{40}$/.test(b.head_sha)) return unprocessable('No commit found for SHA', 'head_sha');
  const id = state.newId();
  const run: StoredCheckRun = {
    id,
    node_id: nodeId('CR', id),
    owner: o!,
    repo: r!,
    head_sha: b.head_sha,
    name: b.name,
    status: 'queued',
    conclusion: null,
    started_at: typeof b.started_at === 'string' ? b.started_at : now(),
    completed_at: null,
    external_id: null,
    details_url: null,
    output: { title: null, summary: null, text: null },
    actions: [],
  };
  const invalid = applyCheckRunBody(run, b);
  if (invalid) return invalid;
  state.checkRuns.set(id, run);
  return { status: 201, body: checkRunJson(run, origin, state.bot) };
}

function updateCheckRun(state: StandinState, { params: [o, r, id], body, origin }: Request): Reply {
  const run = state.checkRuns.get(Number(id));
  if (!run || repoKey(run.owner, run.repo) !== repoKey(o!, r!)) return notFound();
  // Validate on a copy: GitHub changes nothing when the request is rejected.
  const updated = structuredClone(run);
  const invalid = applyCheckRunBody(updated, (body ?? {}) as Record<string, unknown>);
  if (invalid) return invalid;
  Object.assign(run, updated);
  return { status: 200, body: checkRunJson(run, origin, state.bot) };
}

function listCheckRuns(state: StandinState, { params: [o, r, ref], query, origin }: Request): Reply {
  let runs = [...state.checkRuns.values()]
    .filter((c) => repoKey(c.owner, c.repo) === repoKey(o!, r!) && c.head_sha === ref)
    .sort((a, b) => b.id - a.id);
  const name = query.get('check_name');
  if (name) runs = runs.filter((c) => c.name === name);
  const status = query.get('status');
  if (status) runs = runs.filter((c) => c.status === status);
  // filter=latest (the default) keeps the most recent run of each name.
  if ((query.get('filter') ?? 'latest') === 'latest') {
    const seen = new Set<string>();
    runs = runs.filter((c) => !seen.has(c.name) && Boolean(seen.add(c.name)));
  }
  return { status: 200, body: { total_count: runs.length, check_runs: runs.map((c) => checkRunJson(c, origin, state.bot)) } };
}

export function checkRunRoutes(state: StandinState): Route[] {
  return [
    route('POST /repos/:owner/:repo/check-runs', /^\/repos\/([^/]+)\/([^/]+)\/check-runs$/, (req) => createCheckRun(state, req)),
    route('PATCH /repos/:owner/:repo/check-runs/:check_run_id', /^\/repos\/([^/]+)\/([^/]+)\/check-runs\/(\d+)$/, (req) => updateCheckRun(state, req)),
    route('GET /repos/:owner/:repo/commits/:ref/check-runs', /^\/repos\/([^/]+)\/([^/]+)\/commits\/([^/]+)\/check-runs$/, (req) => listCheckRuns(state, req)),
  ];
}
