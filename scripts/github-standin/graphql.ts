// GraphQL: only the minimizeComment mutation; anything else answers like GitHub does for an unknown field.
import { route, type Reply, type Route } from './http.ts';
import type { StandinState } from './state.ts';

type GraphqlBody = { query?: string; variables?: Record<string, unknown> } | undefined;

/** A mutation argument, given inline ("x" or x) or as a $variable. */
function argument(query: string, vars: Record<string, unknown>, field: string): string | undefined {
  const m = new RegExp(`${field}\\s*:\\s*(?:\\$(\\w+)|"([^"]*)"|(\\w+))`).exec(query);
  if (!m) return undefined;
  return m[1] !== undefined ? (vars[m[1]] as string | undefined) : (m[2] ?? m[3]);
}

function graphql(state: StandinState, body: GraphqlBody): Reply {
  const query = body?.query ?? '';
  if (!/\bminimizeComment\b/.test(query)) {
    return { status: 200, body: { errors: [{ message: 'The GitHub stand-in only implements the minimizeComment mutation' }] } };
  }
  const vars = body?.variables ?? {};
  const subjectId = argument(query, vars, 'subjectId');
  const classifier = argument(query, vars, 'classifier');
  if (!subjectId || !classifier) {
    return { status: 200, body: { errors: [{ message: 'minimizeComment requires subjectId and classifier' }] } };
  }
  const comment = [...state.comments.values()].find((c) => c.node_id === subjectId);
  if (!comment) {
    return {
      status: 200,
      body: {
        data: { minimizeComment: null },
        errors: [{ type: 'NOT_FOUND', path: ['minimizeComment'], message: `Could not resolve to a node with the global id of '${subjectId}'.` }],
      },
    };
  }
  comment.minimizedReason = classifier.toLowerCase();
  return {
    status: 200,
    body: { data: { minimizeComment: { minimizedComment: { isMinimized: true, minimizedReason: comment.minimizedReason } } } },
  };
}

export function graphqlRoutes(state: StandinState): Route[] {
  return [route('POST /graphql', /^\/graphql$/, ({ body }) => graphql(state, body as GraphqlBody))];
}
