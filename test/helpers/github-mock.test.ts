// The nock-based GitHub mock reports a request it has no interceptor for by method and URL, and the
// report belongs to the test that made it.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import nock from 'nock';
import { describeUnmatched, GithubMock, takeUnexpected } from './github-mock.ts';

beforeAll(() => {
  nock.disableNetConnect();
});
afterAll(() => {
  nock.cleanAll();
  nock.enableNetConnect();
});

describe('GithubMock', () => {
  test('an unmatched fetch is reported with its method and full URL', async () => {
    const gh = new GithubMock('acme', 'mocked');
    gh.permission('bob', 'write');
    const res = await fetch('https://api.github.com/repos/acme/mocked/issues/7/comments?per_page=100', { method: 'GET' });
    expect(res.status).toBe(501);
    await fetch('https://api.github.com/repos/acme/mocked/collaborators/bob/permission');
    expect(takeUnexpected()).toEqual(['GET https://api.github.com/repos/acme/mocked/issues/7/comments?per_page=100']);
    gh.assertNoUnexpected();
  });

  test('each test starts with no unexpected calls of its own', () => {
    expect(takeUnexpected()).toEqual([]);
  });

  test('describes node http requests and fetch requests alike', () => {
    expect(describeUnmatched(new Request('https://api.github.com/app/installations/1/access_tokens', { method: 'POST' })).text).toBe('POST https://api.github.com/app/installations/1/access_tokens');
    expect(describeUnmatched({ method: 'PATCH', options: { host: 'api.github.com', path: '/repos/a/b/check-runs/1', protocol: 'https:' } }).text).toBe('PATCH https://api.github.com/repos/a/b/check-runs/1');
  });
});
