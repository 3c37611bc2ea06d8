// Issue 9, section 3: the Temporal frontend. Whoever reaches an unauthenticated Temporal can signal a PR
// workflow with a forged `/approve` from an admin, and the embedded dev server listens on 127.0.0.1 with no
// authentication. Repository code runs in a private network (activities/sandbox-network.ts) that has no way
// to this host's loopback. The attack is a real PR: the default branch's reviewed hook runs a script that
// the PR rewrites to reach the Temporal frontend (and its UI, and any loopback service) and forge a signal.
import { connect, createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CHECK_PLAN } from '../../shared/contracts.ts';
import { createFixtureRepo, terraformFixture, type FixtureRepo } from '../helpers/fixture-repo.ts';
import { GithubMock } from '../helpers/github-mock.ts';
import { pullRequestEvent, type TestPr } from '../helpers/payloads.ts';
import { startHarness, type Harness } from '../helpers/workflow-harness.ts';

const OWNER = 'acme';

let h: Harness;
let tmp: string;
let loopback: Server;
let loopbackConnections = 0;
const repos: FixtureRepo[] = [];

beforeAll(async () => {
  h = await startHarness();
  tmp = await mkdtemp(join(tmpdir(), 'terrapin-security-temporal-'));
  await mkdir(join(tmp, 'states'));
  h.allowRunnerPath(join(tmp, 'states'));
  // Any other service on this host's loopback (a database, the webhook server, a metrics endpoint).
  loopback = createServer((socket) => {
    loopbackConnections++;
    socket.end();
  });
  await new Promise<void>((resolve) => loopback.listen(0, '127.0.0.1', resolve));
  await h.startWorker();
});

afterAll(async () => {
  await new Promise<void>((resolve) => loopback?.close(() => resolve()) ?? resolve());
  await h?.teardown();
  for (const r of repos) await r.cleanup();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** bash's /dev/tcp: says whether a TCP connection to host:port could be made. */
const probe = (host: string, port: number) =>
  `if (exec 3<>/dev/tcp/${host}/${port}) 2>/dev/null; then echo "REACHED ${host}:${port}"; else echo "REFUSED ${host}:${port}"; fi`;

describe('repository code cannot reach the Temporal frontend', () => {
  test('a hook script rewritten by the PR tries the frontend, the UI and a loopback service: every connection is refused', async () => {
    const [host, portText] = h.env.address.split(':');
    const temporalPort = Number(portText);
    const otherPort = (loopback.address() as AddressInfo).port;
    // The same probe from the worker's own network reaches the frontend: the ports are the right ones.
    const fromHost = await new Promise<boolean>((resolve) => {
      const c = connect(temporalPort, host, () => {
        c.destroy();
        resolve(true);
      });
      c.on('error', () => resolve(false));
    });
    expect(fromHost).toBe(true);

    const stateFile = join(tmp, 'states', 'forge.tfstate');
    const main = terraformFixture({ stateFile, resources: { a: { input: 'base' } } });
    const config = 'defaults:\n  hooks:\n    prePlan: bash check.sh\n';
    const repo = await createFixtureRepo({ 'main.tf': main, '.terrapin.yml': config, 'check.sh': '#!/bin/sh\ntrue\n' });
    repos.push(repo);
    // The PR keeps the reviewed hook and rewrites the script it runs: that is PR code, run at plan time.
    const attack = [
      '#!/bin/bash',
      `${probe(host!, temporalPort)}`,
      `${probe('127.0.0.1', temporalPort + 1000)}`, // the embedded server's UI (port + 1000) proxies the API
      `${probe('127.0.0.1', otherPort)}`,
      `${probe('10.0.2.2', temporalPort)}`, // slirp's gateway: the host itself
      `${probe('localhost', temporalPort)}`,
      'exit 1',
      '',
    ].join('\n');
    const headSha = await repo.commit({ 'check.sh': attack, 'main.tf': terraformFixture({ stateFile, resources: { a: { input: 'base' }, b: { input: 'forged' } } }) }, { branch: 'feature' });
    const pr: TestPr = { owner: OWNER, repo: 'forge', number: 1, installationId: 42, cloneUrl: repo.cloneUrl, headSha, headRef: 'feature', baseRef: 'main', baseSha: await repo.head('main'), author: 'mallory' };
    const gh = new GithubMock(OWNER, 'forge');
    gh.createCheckRun(CHECK_PLAN, 'in_progress', { title: /^Planning / })
      .comment(1, (b) => /plan failed/i.test(b) && b.includes('prePlan'))
      .updateCheckRun(CHECK_PLAN, 'completed', { conclusion: 'failure', title: 'Plan failed' });
    const before = loopbackConnections;

    await h.receive('pull_request', pullRequestEvent('opened', pr));
    await gh.settled(60_000);

    const comment = gh.comments().at(-1)!;
    expect(comment).toContain(`REFUSED ${host}:${temporalPort}`);
    expect(comment).toContain(`REFUSED 127.0.0.1:${temporalPort + 1000}`);
    expect(comment).toContain(`REFUSED 127.0.0.1:${otherPort}`);
    expect(comment).toContain(`REFUSED 10.0.2.2:${temporalPort}`);
    expect(comment).toContain(`REFUSED localhost:${temporalPort}`);
    expect(comment).not.toContain('REACHED');
    expect(loopbackConnections).toBe(before);
    // No forged event reached the workflow: it holds no plan and no approval, and applied nothing.
    const status = await h.status(OWNER, 'forge', 1);
    expect(status.approvals).toEqual([]);
    expect(status.plan).toBeUndefined();
    await expect(stat(stateFile)).rejects.toThrow(/ENOENT/);
    gh.assertNoUnexpected();
  });
});
