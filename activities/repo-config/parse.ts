// Reads `.terrapin.yml`: YAML syntax, then the schema, then what needs the whole file (names, references),
// then defaults. Every error found is returned, sorted by position; a config only when there are none.
import { DEFAULT_REPLAN_CONCURRENCY } from '../../shared/config.ts';
import { isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import { closestMatch, formatPath, quote, type PathSegment } from './errors.ts';
import { fillDefaults, inheritedDefaults, mergeSettings } from './merge.ts';
import { fileSchema, PROJECT_NAME, type WrittenFile, type WrittenProject } from './schema.ts';
import type { CommandPermissions, CommandRule, ConfigError, GuardedCommand, RepoConfig, ResolvedProject, WrittenSettings } from '../../shared/config.ts';
import { report, type CheckContext } from './yaml-checks.ts';
import { buildDag } from '../../shared/dag.ts';

export const CONFIG_FILE = '.terrapin.yml';

export interface ParseOptions {
  /** The default `parallelism`. */
  cpuCount: number;
  /** Shown in errors; `.terrapin.yml` by default. */
  file?: string;
}

export interface ParseResult {
  config?: RepoConfig;
  errors: ConfigError[];
  /** Where each key and value was written (formatted path → 1-based line and column), for later checks (operator rules). */
  positions?: Map<string, { line: number; column: number }>;
}

export function parseRepoConfigFile(text: string, opts: ParseOptions): ParseResult {
  const file = opts.file ?? CONFIG_FILE;
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0) {
    // The schema would only add noise about a half-parsed document.
    const errors = doc.errors.map((e) => {
      const { line, col } = lines.linePos(e.pos[0]);
      // yaml's own wording for this one names its API.
      const message = e.code === 'MULTIPLE_DOCS' ? 'the file must hold a single YAML document (remove `---`)' : e.message;
      return { file, line, column: col, path: '', message: `invalid YAML: ${message}` };
    });
    return { errors };
  }

  const ctx: CheckContext = { file, doc, lines, errors: [], nodes: new Map() };
  // An empty file is a file with no settings.
  const written = doc.contents === null ? {} : fileSchema(doc.contents as Node, [], ctx);
  if (!written) return { errors: ctx.errors };

  const defaults: WrittenSettings = { ...written.defaults };
  if (written.onFailure !== undefined) {
    if (defaults.onFailure !== undefined) {
      report(ctx, ctx.nodes.get('onFailure'), ['onFailure'], 'is set twice: here and in `defaults.onFailure`; keep only `defaults.onFailure`');
    }
    defaults.onFailure ??= written.onFailure;
  }

  const projects = written.projects ?? [];
  const names = writtenNames(ctx);
  checkReferences(ctx, ['defaults'], written.defaults ?? {}, names, undefined);
  for (const { index, value } of projects) checkReferences(ctx, ['projects', index], value, names, value.name);
  const resolved = resolveProjects(ctx, defaults, projects);
  if (ctx.errors.length === 0) checkCycles(ctx, resolved);

  if (ctx.errors.length > 0) return { errors: sortByPosition(ctx.errors) };
  const positions = new Map<string, { line: number; column: number }>();
  for (const [path, node] of ctx.nodes) {
    const { line, col } = lines.linePos(node.range?.[0] ?? 0);
    positions.set(path, { line, column: col });
  }
  return {
    positions,
    config: {
      version: 1,
      parallelism: written.parallelism ?? Math.max(1, Math.floor(opts.cpuCount) || 1),
      defaults: fillDefaults(defaults),
      projects: resolved,
      projectsListed: written.projects !== undefined,
      allowForks: written.allowForks ?? false,
      deployOnPush: written.deployOnPush ?? false,
      replanConcurrency: written.replanOnBaseChange?.concurrency ?? DEFAULT_REPLAN_CONCURRENCY,
      permissions: resolvePermissions(written.permissions ?? {}),
    },
    errors: [],
  };
}

/** Every command's rule, defaults filled in: write for all; for approve, not the PR's author. */
function resolvePermissions(written: NonNullable<WrittenFile['permissions']>): CommandPermissions {
  const rule = (command: GuardedCommand): CommandRule => {
    const w = written[command] ?? {};
    return { level: w.level ?? 'write', users: w.users ?? [], teams: w.teams ?? [], allowAuthor: w.allowAuthor ?? command !== 'approve' };
  };
  return { plan: rule('plan'), approve: rule('approve'), apply: rule('apply'), unlock: rule('unlock') };
}

/** `dependsOn` and `inputs` must not go round in a circle: nothing of a cycle could ever run. */
function checkCycles(ctx: CheckContext, projects: ResolvedProject[]): void {
  const dag = buildDag(projects.map((p) => ({ name: p.name, dependsOn: p.dependsOn })));
  if (dag.ok) return;
  const index = projects.findIndex((p) => p.name === dag.cycle[0]);
  const at = ['projects', index, 'dependsOn'];
  const node = ctx.nodes.get(formatPath(at)) ?? ctx.nodes.get(formatPath(['projects', index, 'inputs'])) ?? ctx.nodes.get(formatPath(['projects', index, 'name']));
  report(ctx, node, at, `dependency cycle: ${dag.cycle.join(' → ')}; nothing in it could ever run`);
}

/** Every project name as written (even malformed ones, so they do not also show up as unknown references); reports repeats. */
function writtenNames(ctx: CheckContext): Set<string> {
  const names = new Map<string, number>();
  const list = ctx.nodes.get('projects');
  if (!isSeq(list)) return new Set();
  list.items.forEach((_, i) => {
    const path = ['projects', i, 'name'];
    const node = ctx.nodes.get(formatPath(path));
    if (!isScalar(node) || typeof node.value !== 'string') return;
    const first = names.get(node.value);
    if (first === undefined) names.set(node.value, i);
    else report(ctx, node, path, `duplicate project name ${quote(node.value)}; projects[${first}] has it already`);
  });
  return new Set(names.keys());
}

/** `dependsOn` entries and `inputs` must name listed projects, and a project cannot name itself. */
function checkReferences(ctx: CheckContext, base: PathSegment[], settings: WrittenSettings, names: Set<string>, self: string | undefined): void {
  const refs: { path: PathSegment[]; project: string }[] = [];
  const dependsOn = ctx.nodes.get(formatPath([...base, 'dependsOn']));
  if (isSeq(dependsOn)) {
    dependsOn.items.forEach((_, j) => {
      const path = [...base, 'dependsOn', j];
      const node = ctx.nodes.get(formatPath(path));
      // Malformed names were reported by the schema already.
      if (isScalar(node) && typeof node.value === 'string' && PROJECT_NAME.test(node.value)) refs.push({ path, project: node.value });
    });
  }
  for (const [variable, ref] of Object.entries(settings.inputs ?? {})) refs.push({ path: [...base, 'inputs', variable], project: ref.project });

  for (const { path, project } of refs) {
    const node = ctx.nodes.get(formatPath(path));
    if (project === self) report(ctx, node, path, `project ${quote(self)} cannot depend on itself`);
    else if (!names.has(project)) report(ctx, node, path, unknownProjectMessage(project, names));
  }
}

function unknownProjectMessage(project: string, names: Set<string>): string {
  const head = `unknown project ${quote(project)}`;
  if (names.size === 0) return `${head}; no projects are listed in \`projects\``;
  const near = closestMatch(project, [...names]);
  if (near) return `${head}; did you mean ${quote(near)}?`;
  return `${head}; expected one of ${[...names].map((n) => quote(n)).join(', ')}`;
}

/** Defaults merged into each project; reports what only shows after merging. */
function resolveProjects(ctx: CheckContext, defaults: WrittenSettings, projects: { index: number; value: WrittenProject }[]): ResolvedProject[] {
  const seen = new Map<string, string>();
  let defaultsDriftReported = false;
  const resolved: ResolvedProject[] = [];
  for (const { index, value } of projects) {
    const { name, dir, ...own } = value;
    if (name === undefined || dir === undefined) continue;
    const merged = mergeSettings(inheritedDefaults(defaults, name), own);

    const where = `${dir}\0${merged.workspace ?? 'default'}`;
    const holder = seen.get(where);
    const dirPath = ['projects', index, 'dir'];
    if (holder !== undefined) {
      const message = `dir ${quote(dir)} with workspace ${quote(merged.workspace ?? 'default')} is already project ${quote(holder)}`;
      report(ctx, ctx.nodes.get(formatPath(dirPath)), dirPath, message);
    } else seen.set(where, name);

    if (merged.drift && merged.drift.schedule === undefined) {
      const driftPath = own.drift ? ['projects', index, 'drift'] : ['defaults', 'drift'];
      // A schedule that is written but invalid has its own error already.
      const written = ctx.nodes.has(formatPath([...driftPath, 'schedule'])) || ctx.nodes.has('defaults.drift.schedule');
      if (!written && (own.drift || !defaultsDriftReported)) {
        const message = own.drift ? 'missing required key `schedule`' : `missing required key \`schedule\` (project ${quote(name)} sets none)`;
        report(ctx, ctx.nodes.get(formatPath(driftPath)), driftPath, message);
        defaultsDriftReported ||= !own.drift;
      }
    }
    // Copied so projects never share (and mutate) the lists they inherited from `defaults`.
    resolved.push(structuredClone({ name, dir, ...fillDefaults(merged) }));
  }
  return resolved;
}

function sortByPosition(errors: ConfigError[]): ConfigError[] {
  return errors.toSorted((a, b) => a.line - b.line || a.column - b.column);
}
