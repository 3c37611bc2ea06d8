// What the stand-in knows: users, permissions, pull requests, issues, comments, check runs and tokens.
import type { Permission, StandinUser, StoredCheckRun, StoredComment } from './types.ts';

export const nodeId = (prefix: string, id: number) => `${prefix}_${Buffer.from(`standin:${id}`).toString('base64url')}`;
export const repoKey = (owner: string, repo: string) => `${owner}/${repo}`.toLowerCase();
export const issueKey = (owner: string, repo: string, n: number | string) => `${repoKey(owner, repo)}#${n}`;
export const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

export class StandinState {
  readonly permissions = new Map<string, Permission>();
  readonly pulls = new Map<string, Record<string, unknown>>();
  /** Issues and pull requests that exist, for the issue routes (which 404 on anything else). */
  readonly issues = new Set<string>();
  readonly comments = new Map<number, StoredComment>();
  readonly checkRuns = new Map<number, StoredCheckRun>();
  readonly tokens = new Set<string>();
  /** The app's bot user, the author of every comment made with an installation token. */
  readonly bot: StandinUser;
  private lastId = 1000;
  private readonly users = new Map<string, StandinUser>();

  constructor(botLogin: string) {
    this.bot = this.user(botLogin);
  }

  newId(): number {
    return ++this.lastId;
  }

  user(login: string): StandinUser {
    let u = this.users.get(login);
    if (!u) {
      const id = this.newId();
      u = { login, id, node_id: nodeId('U', id), type: login.endsWith('[bot]') ? 'Bot' : 'User' };
      this.users.set(login, u);
    }
    return u;
  }

  setPullRequest(owner: string, repo: string, number: number, pr: Record<string, unknown>): void {
    this.pulls.set(issueKey(owner, repo, number), pr);
    this.issues.add(issueKey(owner, repo, number));
  }

  storeComment(owner: string, repo: string, issueNumber: number, body: string, author: StandinUser): StoredComment {
    const id = this.newId();
    const at = now();
    const comment: StoredComment = { id, node_id: nodeId('IC', id), owner, repo, issueNumber, body, user: author, created_at: at, updated_at: at, reactions: [] };
    this.comments.set(id, comment);
    return comment;
  }

  findComment(owner: string, repo: string, id: string): StoredComment | undefined {
    const c = this.comments.get(Number(id));
    return c && repoKey(c.owner, c.repo) === repoKey(owner, repo) ? c : undefined;
  }

  commentsOf(owner: string, repo: string, issueNumber?: number): StoredComment[] {
    return [...this.comments.values()].filter(
      (c) => repoKey(c.owner, c.repo) === repoKey(owner, repo) && (issueNumber === undefined || c.issueNumber === issueNumber),
    );
  }

  checkRunsOf(owner: string, repo: string): StoredCheckRun[] {
    return [...this.checkRuns.values()].filter((c) => repoKey(c.owner, c.repo) === repoKey(owner, repo));
  }
}
