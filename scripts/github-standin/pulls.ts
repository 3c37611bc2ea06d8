// Installation tokens, pull requests and collaborator permissions.
import { randomBytes } from 'node:crypto';
import { notFound, route, type Reply, type Route } from './http.ts';
import { issueKey, type StandinState } from './state.ts';
import { INSTALLATION_TOKEN_ROUTE } from './types.ts';

function createToken(state: StandinState): Reply {
  const token = `ghs_${randomBytes(18).toString('hex')}`;
  state.tokens.add(token);
  const expires = new Date(Date.now() + 3600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  return {
    status: 201,
    body: {
      token,
      expires_at: expires,
      permissions: { checks: 'write', contents: 'read', issues: 'write', pull_requests: 'write', metadata: 'read' },
      repository_selection: 'all',
    },
  };
}

export function pullRoutes(state: StandinState): Route[] {
  return [
    route(INSTALLATION_TOKEN_ROUTE, /^\/app\/installations\/(\d+)\/access_tokens$/, () => createToken(state), 'jwt'),
    route('GET /repos/:owner/:repo/pulls/:pull_number', /^\/repos\/([^/]+)\/([^/]+)\/pulls\/(\d+)$/, ({ params: [o, r, n] }) => {
      const pr = state.pulls.get(issueKey(o!, r!, n!));
      return pr ? { status: 200, body: pr } : notFound();
    }),
    // The stand-in keeps no commits: a PR's only author is whoever opened it.
    route('GET /repos/:owner/:repo/pulls/:pull_number/commits', /^\/repos\/([^/]+)\/([^/]+)\/pulls\/(\d+)\/commits$/, () => ({ status: 200, body: [] })),
    route(
      'GET /repos/:owner/:repo/collaborators/:username/permission',
      /^\/repos\/([^/]+)\/([^/]+)\/collaborators\/([^/]+)\/permission$/,
      ({ params: [, , login] }) => {
        const permission = state.permissions.get(decodeURIComponent(login!).toLowerCase()) ?? 'none';
        return { status: 200, body: { permission, role_name: permission, user: state.user(decodeURIComponent(login!)) } };
      },
    ),
  ];
}
