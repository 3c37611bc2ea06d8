// Everything the PR workflow tests run on: a real Temporal dev server, the real worker with the real
// activities (git, terraform, Octokit → nock), and the real Probot app receiving webhook payloads.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Client } from '@temporalio/client';
import type { DataConverter } from '@temporalio/common';
import { Worker, bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import nock from 'nock';
import { Probot, ProbotOctokit } from 'probot';
import pino from 'pino';
import { createActivities } from '../../activities/index.ts';
import { loadConfig, type ServerConfig } from '../../app/config.ts';
import { createApp } from '../../app/index.ts';
import { HEARTBEAT_TUNING, WORKFLOWS_PATH } from '../../app/worker.ts';
import { prWorkflowId, prStateQuery, type PrStatus } from '../../shared/contracts.ts';
import { SEARCH_ATTRIBUTES } from '../../shared/records.ts';
import { startTestServer } from './temporal-cli.ts';
import { quietBundlerLogger } from './bundler-logger.ts';

export interface Harness {
  env: TestWorkflowEnvironment;
  config: ServerConfig;
  taskQueue: string;
  /** Delivers a webhook through Probot exactly as the HTTP endpoint would after verifying it. */
  receive(name: string, payload: Record<string, any>, deliveryId?: string): Promise<void>;
  /** The same, for an app whose workflows run on another task queue (workers in other processes). */
  receiveOn(taskQueue: string, name: string, payload: Record<string, any>, deliveryId?: string): Promise<void>;
  /** A worker with the real activities; `github` points them at another API (a loopback stand-in). */
  startWorker(opts?: WorkerOptions): Promise<RunningWorker>;
  /**
   * Lets terraform and hooks see (read-write) a host dir outside every checkout, e.g. the temp dir that
   * holds the fixtures' local state files: the operator's `runner.paths`. Terraform runs sandboxed in tests.
   */
  allowRunnerPath(path: string): void;
  status(owner: string, repo: string, number: number): Promise<PrStatus>;
  /**
   * Waits until the PR's workflow has finished handling the delivery (its `handled` list holds the id) and
   * is idle: no job (a plan or apply the event started runs on after it counts as handled) and nothing
   * queued. From then on, whatever that event was going to do has been done, and what did not happen will not.
   */
  waitHandled(owner: string, repo: string, number: number, deliveryId: string, timeoutMs?: number): Promise<PrStatus>;
  waitFor(owner: string, repo: string, number: number, ok: (s: PrStatus) => boolean, timeoutMs?: number): Promise<PrStatus>;
  teardown(): Promise<void>;
}

export interface WorkerOptions {
  github?: Partial<ServerConfig['github']>;
  /**
   * The operator's credentials for terraform, as a deployment passes them: `allow` is the value of
   * TERRAPIN_TERRAFORM_ENV (read by app/config.ts), `env` the worker process's variables. The activities
   * pick them the way the worker does (selectTerraformEnv over the process environment at start); the
   * variables are in this process's environment only while the activities are created.
   */
  terraformEnv?: { allow: string; env: Record<string, string> };
}

export interface RunningWorker {
  stop(): Promise<void>;
}

let bundle: WorkflowBundleWithSourceMap | undefined;

export async function startHarness(opts: { serverArgs?: string[]; dataConverter?: DataConverter } = {}): Promise<Harness> {
  // nock's interceptors break grpc-js connection set-up: connect with them off, then turn them on.
  nock.restore();
  const devEnv = await startTestServer({ extraArgs: opts.serverArgs, searchAttributes: Object.values(SEARCH_ATTRIBUTES) });
  // With a data converter (payload encryption), every client and worker of the harness uses it, as the app's do.
  const env = opts.dataConverter
    ? Object.assign(Object.create(devEnv) as TestWorkflowEnvironment, { client: new Client({ connection: devEnv.connection, namespace: 'default', dataConverter: opts.dataConverter }) })
    : devEnv;
  nock.activate();
  nock.disableNetConnect();
  nock.enableNetConnect((host) => host.startsWith('127.0.0.1') || host.startsWith('localhost'));
  // The failure converter runs in the workflow sandbox: an encrypting harness needs a bundle that includes it.
  const failureConverterPath = opts.dataConverter?.failureConverterPath;
  const workflowBundle = failureConverterPath
    ? await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, failureConverterPath, logger: quietBundlerLogger })
    : (bundle ??= await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietBundlerLogger }));
  const harnessOpts = opts;
  const dataDir = await mkdtemp(join(tmpdir(), 'terrapin-data-'));
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
  const taskQueue = `terrapin-test-${randomUUID()}`;
  const config: ServerConfig = {
    github: { appId: '1', privateKey, webhookSecret: 'test-secret', baseUrl: 'https://api.github.com' },
    temporal: { namespace: 'default', taskQueue },
    port: 0,
    logLevel: 'silent',
    dataDir,
    repoAllowlist: [],
    terraformEnv: [],
    operatorPolicy: { repositories: [], runner: { sandbox: 'auto', paths: [] } },
  };
  const logger = pino({ level: 'silent' });
  const probot = new Probot({
    appId: 1,
    privateKey,
    secret: 'test-secret',
    log: logger,
    Octokit: ProbotOctokit.defaults({ retry: { enabled: false }, throttle: { enabled: false } }),
  });
  await probot.load(createApp({ client: env.client, taskQueue, logger }));
  const probots = new Map<string, Probot>([[taskQueue, probot]]);
  const probotFor = async (queue: string) => {
    let p = probots.get(queue);
    if (!p) {
      p = new Probot({ appId: 1, privateKey, secret: 'test-secret', log: logger, Octokit: ProbotOctokit.defaults({ retry: { enabled: false }, throttle: { enabled: false } }) });
      await p.load(createApp({ client: env.client, taskQueue: queue, logger }));
      probots.set(queue, p);
    }
    return p;
  };

  const workers: RunningWorker[] = [];
  const status = (owner: string, repo: string, number: number) =>
    env.client.workflow.getHandle(prWorkflowId(owner, repo, number)).query(prStateQuery);

  return {
    env,
    config,
    taskQueue,
    async receive(name, payload, deliveryId = randomUUID()) {
      await probot.receive({ id: deliveryId, name, payload } as Parameters<Probot['receive']>[0]);
    },
    async receiveOn(queue, name, payload, deliveryId = randomUUID()) {
      await (await probotFor(queue)).receive({ id: deliveryId, name, payload } as Parameters<Probot['receive']>[0]);
    },
    async startWorker(opts = {}) {
      let workerConfig = opts.github ? { ...config, github: { ...config.github, ...opts.github } } : config;
      let activities: ReturnType<typeof createActivities>;
      if (opts.terraformEnv) {
        const { allow, env: vars } = opts.terraformEnv;
        const { terraformEnv } = loadConfig({ APP_ID: config.github.appId, PRIVATE_KEY: config.github.privateKey, WEBHOOK_SECRET: config.github.webhookSecret, TERRAPIN_TERRAFORM_ENV: allow });
        workerConfig = { ...workerConfig, terraformEnv };
        const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
        Object.assign(process.env, vars);
        try {
          activities = createActivities({ config: workerConfig, logger, temporal: env.client });
        } finally {
          for (const [k, v] of Object.entries(saved)) {
            if (v === undefined) delete process.env[k];
            else process.env[k] = v;
          }
        }
      } else {
        activities = createActivities({ config: workerConfig, logger, temporal: env.client });
      }
      const worker = await Worker.create({
        connection: env.nativeConnection,
        taskQueue,
        workflowBundle: workflowBundle!,
        activities,
        dataConverter: harnessOpts.dataConverter,
        ...HEARTBEAT_TUNING,
      });
      const running = worker.run();
      const handle = {
        async stop() {
          if (worker.getState() === 'RUNNING') worker.shutdown();
          await running;
        },
      };
      workers.push(handle);
      return handle;
    },
    allowRunnerPath(path) {
      config.operatorPolicy.runner.paths.push({ path, writable: true });
    },
    status,
    async waitHandled(owner, repo, number, deliveryId, timeoutMs = 90_000) {
      const deadline = Date.now() + timeoutMs;
      let last: PrStatus | undefined;
      let error: unknown;
      while (Date.now() < deadline) {
        try {
          last = await status(owner, repo, number);
          if (last.handled.includes(deliveryId) && !last.job && last.queued === 0) return last;
        } catch (err) {
          error = err; // the workflow may not exist yet
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`${owner}/${repo}#${number}: delivery ${deliveryId} not handled (or the workflow not idle after it) in ${timeoutMs} ms; last state: ${JSON.stringify(last)}${last ? '' : `, ${String(error)}`}`);
    },
    async waitFor(owner, repo, number, ok, timeoutMs = 90_000) {
      const deadline = Date.now() + timeoutMs;
      let last: PrStatus | undefined;
      while (Date.now() < deadline) {
        try {
          last = await status(owner, repo, number);
          if (ok(last)) return last;
        } catch {
          // the workflow may not exist yet
        }
        await new Promise((r) => setTimeout(r, 200));
      }
      throw new Error(`timed out waiting for PR state; last: ${JSON.stringify(last)}`);
    },
    async teardown() {
      for (const w of workers) await w.stop();
      await env.teardown();
      await rm(dataDir, { recursive: true, force: true });
      nock.cleanAll();
      nock.enableNetConnect();
    },
  };
}
