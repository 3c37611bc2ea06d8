// Reads `.terrapin.yml`: YAML syntax, then the JSON Schema (schemas/terrapin.schema.json), then what the
// schema cannot say (names and references across projects, dirs, env plumbing), then defaults. Every error
// found is returned, sorted by position; a config only when there are none.
import { posix } from 'node:path';
import { closestMatch, quote, type PathSegment } from './errors.ts';
import { plumbingEnvProblem } from './env-names.ts';
import { fillDefaults, inheritedDefaults, mergeSettings } from './merge.ts';
import { repoConfigValidator } from './schema.ts';
import { validateYaml } from './validate.ts';
import { policyChecks, writtenSettings, type FileData, type ProjectData } from './written.ts';
import { pointerOf, type Position, type YamlSource } from './yaml-source.ts';
import { DEFAULT_REPLAN_CONCURRENCY } from '../../shared/config.ts';
import type { CommandPermissions, CommandRule, ConfigError, GuardedCommand, RepoConfig, ResolvedProject, WrittenSettings } from '../../shared/config.ts';
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
  positions?: Map<string, Position>;
}

interface Checks {
  source: YamlSource;
  errors: ConfigError[];
}

const report = (c: Checks, path: readonly PathSegment[], message: string, at: 'key' | 'value' = 'value') => c.errors.push(c.source.error(pointerOf(path), message, at));

export function parseRepoConfigFile(text: string, opts: ParseOptions): ParseResult {
  const validated = validateYaml(text, opts.file ?? CONFIG_FILE, repoConfigValidator());
  if (!validated.source || validated.data === undefined) return { errors: validated.errors };
  const c: Checks = { source: validated.source, errors: [...validated.errors] };
  const data = validated.data as FileData;

  const defaultsData = data.defaults ?? {};
  const defaults = writtenSettings(defaultsData);
  if (data.onFailure !== undefined) {
    if (defaults.onFailure !== undefined) report(c, ['onFailure'], 'is set twice: here and in `defaults.onFailure`; keep only `defaults.onFailure`');
    defaults.onFailure ??= data.onFailure;
  }

  checkEnvNames(c, ['defaults'], defaultsData);
  const projects = (data.projects ?? []).flatMap((p, index) => (p ? [{ index, value: p }] : []));
  for (const { index, value } of projects) {
    checkEnvNames(c, ['projects', index], value);
    checkDir(c, index, value);
  }
  const names = writtenNames(c, (c.source.data ?? {}) as FileData);
  checkPolicyNames(c, (c.source.data ?? {}) as FileData);
  checkReferences(c, ['defaults'], defaultsData, names, undefined);
  for (const { index, value } of projects) checkReferences(c, ['projects', index], value, names, value.name);
  const resolved = resolveProjects(c, defaults, projects);
  if (c.errors.length === 0) checkCycles(c, resolved, projects.map((p) => p.index));

  if (c.errors.length > 0) return { errors: c.errors.toSorted((a, b) => a.line - b.line || a.column - b.column) };
  return {
    positions: c.source.positions(),
    config: {
      version: 1,
      parallelism: data.parallelism ?? Math.max(1, Math.floor(opts.cpuCount) || 1),
      defaults: fillDefaults(defaults),
      projects: resolved,
      projectsListed: data.projects !== undefined,
      allowForks: data.allowForks ?? false,
      deployOnPush: data.deployOnPush ?? false,
      permissions: resolvePermissions(data.permissions ?? {}),
      ...(data.lock?.ttl !== undefined ? { lockTtl: data.lock.ttl } : {}),
      replanConcurrency: data.replanOnBaseChange?.concurrency ?? DEFAULT_REPLAN_CONCURRENCY,
      policies: policyChecks(data.policies),
    },
    errors: [],
  };
}

/** Every command's rule, defaults filled in: write for all; for approve, not the PR's author. */
function resolvePermissions(written: NonNullable<FileData['permissions']>): CommandPermissions {
  const rule = (command: GuardedCommand): CommandRule => {
    const w = written[command] ?? {};
    return { level: w.level ?? 'write', users: w.users ?? [], teams: w.teams ?? [], allowAuthor: w.allowAuthor ?? command !== 'approve' };
  };
  return { plan: rule('plan'), approve: rule('approve'), apply: rule('apply'), unlock: rule('unlock') };
}

/** Relative, normalised, inside the repository; `.` is the root. Undefined when it leaves the repository. */
function normaliseRepoDir(dir: string): string | undefined {
  if (dir.includes('\0') || dir.includes('\\') || dir.trim() === '') return undefined;
  if (posix.isAbsolute(dir) || /^[A-Za-z]:/.test(dir)) return undefined;
  const normalised = posix.normalize(dir).replace(/\/+$/, '') || '.';
  return normalised === '..' || normalised.startsWith('../') ? undefined : normalised;
}

/** The schema refuses absolute paths; `a/../../x` needs normalising to be seen leaving the repository. */
function checkDir(c: Checks, index: number, project: ProjectData): void {
  if (project.dir === undefined) return;
  const normalised = normaliseRepoDir(project.dir);
  if (normalised === undefined) {
    report(c, ['projects', index, 'dir'], `must be a path inside the repository, got ${quote(project.dir)}`);
    delete project.dir;
  } else project.dir = normalised;
}

/** `env` may not set the variables that make up how terraform, git and hooks are run (env-names.ts). */
function checkEnvNames(c: Checks, base: PathSegment[], settings: ProjectData): void {
  for (const name of Object.keys(settings.env ?? {})) {
    const problem = plumbingEnvProblem(name);
    if (problem) report(c, [...base, 'env', name], problem, 'key');
  }
}

/** `dependsOn` and `inputs` must not go round in a circle: nothing of a cycle could ever run. */
function checkCycles(c: Checks, projects: ResolvedProject[], indexes: number[]): void {
  const dag = buildDag(projects.map((p) => ({ name: p.name, dependsOn: p.dependsOn })));
  if (dag.ok) return;
  const index = indexes[projects.findIndex((p) => p.name === dag.cycle[0])];
  const at = ['projects', index, 'dependsOn'];
  const where = [at, ['projects', index, 'inputs'], ['projects', index, 'name']].find((p) => c.source.has(pointerOf(p)))!;
  c.errors.push({ ...c.source.error(pointerOf(where), ''), path: `projects[${index}].dependsOn`, message: `dependency cycle: ${dag.cycle.join(' → ')}; nothing in it could ever run` });
}

/** Every project name as written (even malformed ones, so they do not also show up as unknown references); reports repeats. */
function writtenNames(c: Checks, raw: FileData): Set<string> {
  const names = new Map<string, number>();
  if (!Array.isArray(raw.projects)) return new Set();
  raw.projects.forEach((p, i) => {
    const name = p && typeof p === 'object' ? p.name : undefined;
    if (typeof name !== 'string') return;
    const first = names.get(name);
    if (first === undefined) names.set(name, i);
    else report(c, ['projects', i, 'name'], `duplicate project name ${quote(name)}; projects[${first}] has it already`);
  });
  return new Set(names.keys());
}

/** A policy check's name is its check run's and its `/approve-policies` verdict's: one check per name. */
function checkPolicyNames(c: Checks, raw: FileData): void {
  const seen = new Set<string>();
  if (!Array.isArray(raw.policies)) return;
  raw.policies.forEach((check, i) => {
    const name = check && typeof check === 'object' ? check.name : undefined;
    if (typeof name !== 'string') return;
    if (seen.has(name)) report(c, ['policies', i, 'name'], `duplicate policy check name ${quote(name)}`);
    seen.add(name);
  });
}

/** `dependsOn` entries and `inputs` must name listed projects, and a project cannot name itself. */
function checkReferences(c: Checks, base: PathSegment[], settings: ProjectData, names: Set<string>, self: string | undefined): void {
  const refs: { path: PathSegment[]; project: string }[] = [];
  // Malformed names were reported by the schema and are gone from the data already.
  settings.dependsOn?.forEach((project, j) => project !== undefined && refs.push({ path: [...base, 'dependsOn', j], project }));
  for (const [variable, ref] of Object.entries(writtenSettings({ inputs: settings.inputs }).inputs ?? {})) refs.push({ path: [...base, 'inputs', variable], project: ref.project });

  for (const { path, project } of refs) {
    if (project === self) report(c, path, `project ${quote(self)} cannot depend on itself`);
    else if (!names.has(project)) report(c, path, unknownProjectMessage(project, names));
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
function resolveProjects(c: Checks, defaults: WrittenSettings, projects: { index: number; value: ProjectData }[]): ResolvedProject[] {
  const seen = new Map<string, string>();
  let defaultsDriftReported = false;
  const resolved: ResolvedProject[] = [];
  for (const { index, value } of projects) {
    const { name, dir, ...settings } = value;
    if (name === undefined || dir === undefined) continue;
    const own = writtenSettings(settings);
    const merged = mergeSettings(inheritedDefaults(defaults, name), own);

    const where = `${dir}\0${merged.workspace ?? 'default'}`;
    const holder = seen.get(where);
    if (holder !== undefined) {
      report(c, ['projects', index, 'dir'], `dir ${quote(dir)} with workspace ${quote(merged.workspace ?? 'default')} is already project ${quote(holder)}`);
    } else seen.set(where, name);

    if (merged.drift && merged.drift.schedule === undefined) {
      const driftPath = own.drift ? ['projects', index, 'drift'] : ['defaults', 'drift'];
      // A schedule that is written but invalid has its own error already.
      const written = c.source.has(pointerOf([...driftPath, 'schedule'])) || c.source.has('/defaults/drift/schedule');
      if (!written && (own.drift || !defaultsDriftReported)) {
        const message = own.drift ? 'missing required key `schedule`' : `missing required key \`schedule\` (project ${quote(name)} sets none)`;
        report(c, driftPath, message);
        defaultsDriftReported ||= !own.drift;
      }
    }
    // Copied so projects never share (and mutate) the lists they inherited from `defaults`.
    resolved.push(structuredClone({ name, dir, ...fillDefaults(merged) }));
  }
  return resolved;
}
