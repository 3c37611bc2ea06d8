// Every entry point refuses a Node older than 22.20 with one line saying how to get Node 24, instead of
// "Unknown file extension .ts" and a stack trace. The old Node is played by a preload that makes
// process.versions say 20.11.1 (the check reads nothing else); the real Node 24 then proves the same
// commands still reach their entry.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCRIPTS = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
const OLD_NODE = `--import=${join(ROOT, 'test/cli/old-node.mjs')}`;
const REFUSAL = 'terrapin needs Node 22.20 or newer (this is v20.11.1); install Node 24: https://nodejs.org/en/download or `nvm install 24`\n';

function sh(command: string, nodeOptions?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}) };
  return new Promise((resolve) =>
    execFile('sh', ['-c', command], { cwd: ROOT, env, timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    ),
  );
}

describe('an old Node gets one line and exit 1', () => {
  for (const script of ['start', 'server', 'worker', 'test', 'terrapin']) {
    test(`npm ${script === 'start' || script === 'test' ? script : `run ${script}`}`, async () => {
      // Through the script's own command line, as npm runs it (npm itself is not what is tested).
      const r = await sh(SCRIPTS[script]!, OLD_NODE);
      expect(r).toEqual({ code: 1, stdout: '', stderr: REFUSAL });
    });
  }

  test('the bin, with a command', async () => {
    expect(await sh('node bin/terrapin.mjs status -r acme/infra', OLD_NODE)).toEqual({ code: 1, stdout: '', stderr: REFUSAL });
  });
});

describe('Node 24 passes the check and reaches the entry', () => {
  test('server and worker get as far as reading their configuration', async () => {
    for (const script of ['server', 'worker']) {
      const r = await sh(SCRIPTS[script]!);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe('terrapin: Missing required environment: APP_ID, WEBHOOK_SECRET, PRIVATE_KEY or PRIVATE_KEY_PATH. See .env.example.\n');
    }
  });

  test('the CLI runs', async () => {
    const r = await sh('node bin/terrapin.mjs --version');
    expect(r).toEqual({ code: 0, stdout: `${(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version}\n`, stderr: '' });
  });
});
