// A loopback stand-in for the parts of the GitHub REST and GraphQL APIs that Terrapin uses, for the demo,
// benchmarks and tests. It keeps state (comments, reactions, check runs), answers with GitHub's shapes and
// status codes, validates what GitHub validates for these routes, and records every call.
// Every request goes through one dispatch function, where faults are injected on request: 502s (half of
// them after the change was made, as when a proxy drops GitHub's answer), 403 secondary rate limits and
// 429s, both with retry-after.
// Tests hold it to the calls they expect, as strictly as their nock mocks: `expectExactly` lists every call
// that may come (route, path, body, how many times), `settled` waits until each expected one came, and
// `assertExactly` fails on any call missing, any call beyond its count and any call nothing expected.
import { checkRunRoutes } from './github-standin/check-runs.ts';
import { commentRoutes } from './github-standin/comments.ts';
import { CallLedger } from './github-standin/expectations.ts';
import { FaultInjector } from './github-standin/faults.ts';
import { graphqlRoutes } from './github-standin/graphql.ts';
import { pullRoutes } from './github-standin/pulls.ts';
import { Dispatcher, listen } from './github-standin/server.ts';
import { StandinState, issueKey } from './github-standin/state.ts';
import type { GithubStandin, RecordedCall, StandinOptions } from './github-standin/types.ts';

export * from './github-standin/types.ts';

export async function startGithubStandin(opts: StandinOptions = {}): Promise<GithubStandin> {
  const state = new StandinState(opts.botLogin ?? 'terrapin[bot]');
  const faults = new FaultInjector(opts.faults);
  const routes = [...pullRoutes(state), ...commentRoutes(state), ...checkRunRoutes(state), ...graphqlRoutes(state)];
  const calls: RecordedCall[] = [];
  const listeners = new Set<(call: RecordedCall) => void>();
  const ledger = new CallLedger(calls);
  const server = await listen(opts.port ?? 0, new Dispatcher(routes, state.tokens, faults), (call) => {
    calls.push(call);
    for (const fn of listeners) fn(call);
  });
  return {
    baseUrl: `http://${server.host}/api/v3`,
    host: server.host,
    calls,
    onCall(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    setPermission: (login, permission) => state.permissions.set(login.toLowerCase(), permission),
    setFaults: (next) => faults.set(next),
    setPullRequest: (owner, repo, number, pr) => state.setPullRequest(owner, repo, number, pr),
    addIssueComment: (owner, repo, number, { body, login }) => {
      state.issues.add(issueKey(owner, repo, number));
      return state.storeComment(owner, repo, number, body, state.user(login));
    },
    comments: (owner, repo, issueNumber) => state.commentsOf(owner, repo, issueNumber),
    checkRuns: (owner, repo) => state.checkRunsOf(owner, repo),
    expectExactly: (more, o) => ledger.expectExactly(more, o),
    verifyCalls: () => ledger.verifyCalls(),
    assertExactly: () => ledger.assertExactly(),
    settled: (timeoutMs) => ledger.settled(timeoutMs),
    close: () => server.close(),
  };
}
