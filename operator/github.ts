// What the operator's tools read from GitHub, as the App (APP_ID + private key): only the open drift issues,
// which live nowhere else. Octokit is loaded on first use: most commands never need it.
import { DRIFT_LABEL, driftIssueProject } from '../shared/contracts.ts';
import type { githubCredentials } from './connect.ts';
import { NotFoundError, UnavailableError } from './errors.ts';

type Credentials = NonNullable<ReturnType<typeof githubCredentials>>;

/** The open drift issues of a repository, by project ("Drift detected: <project>", labelled terrapin:drift). */
export async function openDriftIssues(creds: Credentials, repository: string): Promise<Map<string, { number: number; url: string }>> {
  const [{ Octokit }, { createAppAuth }] = await Promise.all([import('@octokit/rest'), import('@octokit/auth-app')]);
  const [owner, repo] = repository.split('/') as [string, string];
  const quiet = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };
  const common = { baseUrl: creds.baseUrl, authStrategy: createAppAuth, userAgent: 'terrapin-cli', log: quiet };
  const app = new Octokit({ ...common, auth: { appId: creds.appId, privateKey: creds.privateKey } });
  let installationId: number;
  try {
    installationId = (await app.apps.getRepoInstallation({ owner, repo })).data.id;
  } catch (err) {
    const status = (err as { status?: number }).status;
    if (status === 404) throw new NotFoundError(`the GitHub App is not installed on ${repository} (or the repository does not exist)`);
    if (status === 401 || status === 403) throw new UnavailableError(`GitHub refused the App's credentials (${status}): check APP_ID and PRIVATE_KEY`);
    throw err;
  }
  const octokit = new Octokit({ ...common, auth: { appId: creds.appId, privateKey: creds.privateKey, installationId } });
  const issues = await octokit.paginate(octokit.issues.listForRepo, { owner, repo, labels: DRIFT_LABEL, state: 'open', per_page: 100 });
  const byProject = new Map<string, { number: number; url: string }>();
  for (const issue of issues) {
    const project = driftIssueProject({ title: issue.title, labels: issue.labels as Array<{ name?: string } | string> });
    if (project && !byProject.has(project)) byProject.set(project, { number: issue.number, url: issue.html_url });
  }
  return byProject;
}
