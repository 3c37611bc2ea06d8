// Issue comments: create, list (paginated), edit, and the bot's reactions to them.
import { notFound, route, unprocessable, type Reply, type Request, type Route } from './http.ts';
import { issueKey, nodeId, now, type StandinState } from './state.ts';
import type { StoredComment } from './types.ts';

const REACTIONS = new Set(['+1', '-1', 'laugh', 'confused', 'heart', 'hooray', 'rocket', 'eyes']);
const MAX_COMMENT_CHARS = 65536;

export function commentJson(c: StoredComment, origin: string) {
  return {
    id: c.id,
    node_id: c.node_id,
    url: `${origin}/api/v3/repos/${c.owner}/${c.repo}/issues/comments/${c.id}`,
    html_url: `${origin}/${c.owner}/${c.repo}/pull/${c.issueNumber}#issuecomment-${c.id}`,
    issue_url: `${origin}/api/v3/repos/${c.owner}/${c.repo}/issues/${c.issueNumber}`,
    body: c.body,
    user: c.user,
    created_at: c.created_at,
    updated_at: c.updated_at,
    author_association: c.user.type === 'Bot' ? 'NONE' : 'MEMBER',
    reactions: { total_count: c.reactions.length },
  };
}

/** The comment body of a create or edit request, or the reply GitHub gives when it is missing or too long. */
function commentText(body: unknown): string | Reply {
  const text = (body as { body?: unknown } | undefined)?.body;
  if (typeof text !== 'string' || text === '') return unprocessable('Invalid request.\n\n"body" wasn\'t supplied.', 'body');
  if (text.length > MAX_COMMENT_CHARS) return unprocessable(`Body is too long (maximum is ${MAX_COMMENT_CHARS} characters)`, 'body');
  return text;
}

function createComment(state: StandinState, { params: [o, r, n], body, origin }: Request): Reply {
  if (!state.issues.has(issueKey(o!, r!, n!))) return notFound();
  const text = commentText(body);
  if (typeof text !== 'string') return text;
  const comment = state.storeComment(o!, r!, Number(n), text, state.bot);
  return { status: 201, body: commentJson(comment, origin) };
}

function listComments(state: StandinState, { params: [o, r, n], query, origin, path }: Request): Reply {
  if (!state.issues.has(issueKey(o!, r!, n!))) return notFound();
  const all = [...state.comments.values()].filter((c) => issueKey(c.owner, c.repo, c.issueNumber) === issueKey(o!, r!, n!));
  const perPage = Math.min(Math.max(Number(query.get('per_page') ?? 30) || 30, 1), 100);
  const page = Math.max(Number(query.get('page') ?? 1) || 1, 1);
  const lastPage = Math.max(Math.ceil(all.length / perPage), 1);
  const pageUrl = (p: number) => `${origin}/api/v3${path}?per_page=${perPage}&page=${p}`;
  const links = [
    ...(page < lastPage ? [`<${pageUrl(page + 1)}>; rel="next"`, `<${pageUrl(lastPage)}>; rel="last"`] : []),
    ...(page > 1 ? [`<${pageUrl(1)}>; rel="first"`, `<${pageUrl(page - 1)}>; rel="prev"`] : []),
  ];
  return {
    status: 200,
    body: all.slice((page - 1) * perPage, page * perPage).map((c) => commentJson(c, origin)),
    headers: links.length ? { link: links.join(', ') } : {},
  };
}

function editComment(state: StandinState, { params: [o, r, id], body, origin }: Request): Reply {
  const comment = state.findComment(o!, r!, id!);
  if (!comment) return notFound();
  const text = commentText(body);
  if (typeof text !== 'string') return text;
  comment.body = text;
  comment.updated_at = now();
  return { status: 200, body: commentJson(comment, origin) };
}

function react(state: StandinState, { params: [o, r, id], body }: Request): Reply {
  const comment = state.findComment(o!, r!, id!);
  if (!comment) return notFound();
  const content = String((body as { content?: unknown } | undefined)?.content);
  if (!REACTIONS.has(content)) return unprocessable(`Invalid reaction content: ${content}`, 'content');
  const existing = comment.reactions.find((x) => x.content === content && x.user.login === state.bot.login);
  if (existing) return { status: 200, body: { ...existing, node_id: nodeId('REA', existing.id), created_at: now() } };
  const reaction = { id: state.newId(), content, user: state.bot };
  comment.reactions.push(reaction);
  return { status: 201, body: { ...reaction, node_id: nodeId('REA', reaction.id), created_at: now() } };
}

export function commentRoutes(state: StandinState): Route[] {
  return [
    route('POST /repos/:owner/:repo/issues/:issue_number/comments', /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/comments$/, (req) => createComment(state, req)),
    route('GET /repos/:owner/:repo/issues/:issue_number/comments', /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/comments$/, (req) => listComments(state, req)),
    route('PATCH /repos/:owner/:repo/issues/comments/:comment_id', /^\/repos\/([^/]+)\/([^/]+)\/issues\/comments\/(\d+)$/, (req) => editComment(state, req)),
    route(
      'POST /repos/:owner/:repo/issues/comments/:comment_id/reactions',
      /^\/repos\/([^/]+)\/([^/]+)\/issues\/comments\/(\d+)\/reactions$/,
      (req) => react(state, req),
    ),
  ];
}
