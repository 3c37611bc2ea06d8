// The embedded Temporal server: real dev server (the `temporal` CLI), persisted in SQLite under the data dir.
import { chmodSync, mkdirSync, mkdtempSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, temporalSettings } from '../../app/config.ts';
import { createLogger } from '../../app/logger.ts';
import { connectTemporal, isPortFree, SEARCH_ATTRIBUTES, StartupError, tlsConfig, unauthenticatedClusterWarning, type TemporalHandle } from '../../app/temporal.ts';
import { temporalCliPath } from '../helpers/temporal-cli.ts';
import { freePort } from '../helpers/free-port.ts';

const logger = createLogger('silent');
// Each test its own data dir: an embedded server's SQLite file, the stand-in CLI, certificates.
let dataDir: string;
beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'terrapin-temporal-'));
});
const settings = temporalSettings({});
const cli = temporalCliPath();
const env = cli ? { TEMPORAL_CLI_PATH: cli } : {};


afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

describe('connectTemporal, embedded', () => {
  it('keeps workflows across a restart on the same SQLite file, and close() frees the ports', async () => {
    const [port, uiPort] = [await freePort(), await freePort()];
    const workflowId = `pr:acme/infra#${port}`;

    let temporal: TemporalHandle = await connectTemporal(settings, { dataDir, logger, port, uiPort, env });
    try {
      expect(temporal.embedded).toBe(true);
      expect(temporal.address).toBe(`127.0.0.1:${port}`);
      expect(existsSync(join(dataDir, 'temporal', 'temporal.sqlite'))).toBe(true);
      // No worker: the start is durably recorded all the same. The search attributes must be registered.
      await temporal.client.workflow.start('prWorkflow', {
        workflowId,
        taskQueue: 'terrapin-test',
        args: [],
        typedSearchAttributes: [
          { key: SEARCH_ATTRIBUTES.repository, value: 'acme/infra' },
          { key: SEARCH_ATTRIBUTES.pr, value: '7' },
        ],
      });
    } finally {
      await temporal.close();
    }
    expect(await isPortFree(port)).toBe(true);
    expect(await isPortFree(uiPort)).toBe(true);

    temporal = await connectTemporal(settings, { dataDir, logger, port, uiPort, env });
    try {
      const description = await temporal.client.workflow.getHandle(workflowId).describe();
      expect(description.status.name).toBe('RUNNING');
      expect(description.typedSearchAttributes.get(SEARCH_ATTRIBUTES.repository)).toBe('acme/infra');
      expect(description.typedSearchAttributes.get(SEARCH_ATTRIBUTES.pr)).toBe('7');
      await temporal.client.workflow.getHandle(workflowId).terminate('test done');
    } finally {
      await temporal.close();
    }
    expect(await isPortFree(port)).toBe(true);
  });

  it('registers on start the search attributes an older Terrapin\'s SQLite file lacks (the dev server registers them only when it creates it)', async () => {
    const [port, uiPort] = [await freePort(), await freePort()];
    // The file as a Terrapin without TerrapinWaiting left it.
    mkdirSync(join(dataDir, 'temporal'), { recursive: true });
    const older = Object.values(SEARCH_ATTRIBUTES).filter((k) => k !== SEARCH_ATTRIBUTES.waiting);
    const old = await TestWorkflowEnvironment.createLocal({
      server: { executable: { type: 'existing-path', path: cli! }, dbFilename: join(dataDir, 'temporal', 'temporal.sqlite'), ip: '127.0.0.1', port, namespace: settings.namespace, searchAttributes: older },
    });
    const registered = async (connection: TemporalHandle['connection']) =>
      Object.keys((await connection.operatorService.listSearchAttributes({ namespace: settings.namespace })).customAttributes ?? {});
    try {
      expect(await registered(old.connection)).not.toContain('TerrapinWaiting');
    } finally {
      await old.teardown();
    }

    const temporal = await connectTemporal(settings, { dataDir, logger, port, uiPort, env });
    try {
      expect((await registered(temporal.connection)).sort()).toEqual(expect.arrayContaining(Object.values(SEARCH_ATTRIBUTES).map((k) => k.name)));
    } finally {
      await temporal.close();
    }
  });

  it('starts the server again when it misses the SDK\'s 5 s startup deadline (a busy machine), and says so', async () => {
    // A CLI whose first start never answers, as a dev server on an overloaded 2-core runner once did.
    const slowCli = join(dataDir, 'slow-temporal');
    const marker = join(dataDir, 'slow-temporal.started');
    writeFileSync(slowCli, `#!/bin/sh\nif [ ! -e '${marker}' ]; then touch '${marker}'; exec sleep 60; fi\nexec '${cli}' "$@"\n`);
    chmodSync(slowCli, 0o755);
    const lines: string[] = [];
    const capture = createLogger('info', new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) }));
    const [port, uiPort] = [await freePort(), await freePort()];
    const temporal = await connectTemporal(settings, {
      dataDir: join(dataDir, 'slow'),
      logger: capture,
      port,
      uiPort,
      env: { TEMPORAL_CLI_PATH: slowCli },
    });
    try {
      const info = await temporal.connection.workflowService.getSystemInfo({});
      expect(info.serverVersion).toBeTruthy();
    } finally {
      await temporal.close();
    }
    const retries = lines.filter((line) => line.includes('did not answer in time; starting it again'));
    expect(retries).toHaveLength(1);
    expect(JSON.parse(retries[0]!)).toMatchObject({ attempt: 1 });
  }, 30_000);

  it('refuses to start on a busy port with an error naming the port and the way out', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as AddressInfo;
    try {
      const started = connectTemporal(settings, { dataDir, logger, port, uiPort: await freePort(), env });
      await expect(started).rejects.toBeInstanceOf(StartupError);
      await expect(started).rejects.toThrow(new RegExp(`Port ${port} is in use.*TERRAPIN_EMBEDDED_TEMPORAL_PORT`));
    } finally {
      blocker.close();
    }
  });
});

describe('unauthenticatedClusterWarning', () => {
  const base = { namespace: 'default', taskQueue: 'terrapin' };
  it('warns about a cluster reached without a client certificate or API key', () => {
    expect(unauthenticatedClusterWarning({ ...base, address: 'temporal.internal:7233' })).toMatch(/temporal\.internal:7233 .*without a client certificate or API key.*forge approvals/);
    // Server-side TLS alone authenticates the server, not Terrapin.
    expect(unauthenticatedClusterWarning({ ...base, address: 'temporal.internal:7233', tls: { caPath: '/ca.pem' } })).toBeDefined();
  });

  it('is quiet with mTLS, with an API key, for the embedded server, and on this host\'s loopback (out of the sandbox\'s reach)', () => {
    expect(unauthenticatedClusterWarning({ ...base, address: '127.0.0.1:7233' })).toBeUndefined();
    expect(unauthenticatedClusterWarning({ ...base, address: 'localhost:7233' })).toBeUndefined();
    expect(unauthenticatedClusterWarning({ ...base, address: '10.0.0.5:7233' })).toBeDefined();
    expect(unauthenticatedClusterWarning({ ...base, address: 't:7233', tls: { certPath: '/c.pem', keyPath: '/k.pem' } })).toBeUndefined();
    expect(unauthenticatedClusterWarning({ ...base, address: 't:7233', apiKey: 'k' })).toBeUndefined();
    expect(unauthenticatedClusterWarning(base)).toBeUndefined();
  });
});

describe('tlsConfig', () => {
  it('uses plain TLS for an API key alone (Temporal Cloud) and nothing without either', () => {
    expect(tlsConfig({ ...settings, apiKey: 'k' })).toBe(true);
    expect(tlsConfig(settings)).toBeUndefined();
  });

  it('loads the client pair, CA and server name for mTLS', () => {
    const [crt, key, ca] = ['crt', 'key', 'ca'].map((name) => {
      const path = join(dataDir, `${name}.pem`);
      writeFileSync(path, `${name}-pem`);
      return path;
    }) as [string, string, string];
    const tls = tlsConfig(temporalSettings({ TEMPORAL_TLS_CERT: crt, TEMPORAL_TLS_KEY: key, TEMPORAL_TLS_CA: ca, TEMPORAL_TLS_SERVER_NAME: 'ns.tmprl.cloud' }));
    expect(tls).toEqual({
      clientCertPair: { crt: Buffer.from('crt-pem'), key: Buffer.from('key-pem') },
      serverRootCACertificate: Buffer.from('ca-pem'),
      serverNameOverride: 'ns.tmprl.cloud',
    });
  });

  it('rejects a certificate without its key, and unreadable files, as config errors', () => {
    expect(() => tlsConfig(temporalSettings({ TEMPORAL_TLS_CERT: '/x.pem' }))).toThrow(ConfigError);
    expect(() => tlsConfig(temporalSettings({ TEMPORAL_TLS_CA: '/nonexistent/ca.pem' }))).toThrow(/TEMPORAL_TLS_CA: cannot read/);
  });
});
