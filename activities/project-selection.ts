// Which projects a PR plans: the ones `.terrapin.yml` lists whose autoplan globs match a changed file,
// or, without a project list, the Terraform roots the changed files touch (directly or through a local
// module). `all` is every project known, for `/plan -p` and `/plan -d` on projects the PR did not touch.
import { ApplicationFailure } from '@temporalio/activity';
import { CheckoutFileError, readCheckoutFile } from './checkout-files.ts';
import { detectProjects, projectsFromDetection, projectsToPlan, resolveProject, type PullRequestFacts } from './repo-config/index.ts';
import type { RepoConfig, ResolvedProject } from '../shared/config.ts';

export interface ProjectSelection {
  affected: ResolvedProject[];
  all: ResolvedProject[];
}

const TERRAFORM_FILE = /\.(tf|tofu)$/;
/** What detection never reads (as repo-config/detect.ts): downloaded providers and modules. */
const VENDORED = /(^|\/)\.terraform\//;
/** Checkout files read at once ahead of detection (each an open file descriptor meanwhile). */
const READ_AHEAD = 8;

export async function selectProjects(opts: {
  workDir: string;
  config: RepoConfig;
  repoFiles: string[];
  /** Undefined when the base could not be compared: every project counts as affected. */
  changedFiles?: string[];
  pr?: PullRequestFacts;
}): Promise<ProjectSelection> {
  const { config, repoFiles, changedFiles } = opts;
  const resolve = (projects: ResolvedProject[]) => (opts.pr ? projects.map((p) => resolveProject(p, opts.pr!)) : projects);
  if (config.projectsListed) {
    const all = resolve(config.projects);
    return { all, affected: changedFiles ? projectsToPlan({ projects: all }, changedFiles) : all.filter((p) => p.autoplan.enabled) };
  }
  // Only regular files inside the checkout: a `.tf` symlinked to /proc/self/environ or a key is refused by name.
  const readOnce = (path: string) =>
    readCheckoutFile(opts.workDir, path).catch((err: unknown) => {
      throw err instanceof CheckoutFileError ? ApplicationFailure.nonRetryable(`Terrapin reads only regular files of the repository: ${err.message}`, 'CheckoutFileRefused') : err;
    });
  // Detection reads every Terraform source of the repository, one after the other, and twice (for every
  // project, then for the affected ones): each file is read once, and all of them a few at a time ahead
  // of it. A refusal still surfaces where detection meets the file.
  const texts = new Map<string, Promise<string>>();
  const read = (path: string) => {
    let text = texts.get(path);
    if (!text) {
      texts.set(path, (text = readOnce(path)));
      text.catch(() => undefined);
    }
    return text;
  };
  const ahead = repoFiles.filter((f) => TERRAFORM_FILE.test(f) && !VENDORED.test(f));
  await Promise.all(Array.from({ length: Math.min(READ_AHEAD, ahead.length) }, async () => {
    for (let next = ahead.shift(); next !== undefined; next = ahead.shift()) await read(next).catch(() => undefined);
  }));
  const detect = async (changed: string[]) => resolve(projectsFromDetection(await detectProjects(changed, repoFiles, read), config.defaults));
  const all = await detect(repoFiles.filter((f) => TERRAFORM_FILE.test(f)));
  return { all, affected: changedFiles ? await detect(changedFiles) : all };
}
