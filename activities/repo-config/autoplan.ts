// Which projects a push plans: `autoplan.enabled` and a changed file matching one of `whenModified`.
import { matchesGlob, posix } from 'node:path';
import type { ProjectSettings, ResolvedProject } from '../../shared/config.ts';
import type { DetectedProject } from './detect.ts';

/** Globs are relative to the project dir (`../modules/**` reaches out), so they are anchored there first. */
export function projectsToPlan(config: { projects: ResolvedProject[] }, changedFiles: string[]): ResolvedProject[] {
  const files = changedFiles.map((f) => posix.normalize(f).replace(/^\.\//, ''));
  return config.projects.filter((project) => {
    if (!project.autoplan.enabled) return false;
    const globs = project.autoplan.whenModified.map((g) => posix.normalize(posix.join(project.dir, g)));
    return files.some((file) => globs.some((glob) => matchesGlob(file, glob)));
  });
}

/** Detected projects as full projects, with the config's defaults (or the built-in ones). */
export function projectsFromDetection(detected: DetectedProject[], defaults: ProjectSettings): ResolvedProject[] {
  return detected.map(({ name, dir }) => structuredClone({ name, dir, ...defaults }));
}
