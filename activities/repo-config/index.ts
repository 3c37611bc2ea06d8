// `.terrapin.yml` and project detection. See docs/config.md for the file format.
export { projectsFromDetection, projectsToPlan } from './autoplan.ts';
export { detectProjects, type DetectedProject } from './detect.ts';
export { formatConfigError } from './errors.ts';
export { DEFAULT_WHEN_MODIFIED, resolveProject, type PullRequestFacts } from './merge.ts';
export { CONFIG_FILE, parseRepoConfigFile, type ParseOptions, type ParseResult } from './parse.ts';
export type * from '../../shared/config.ts';
