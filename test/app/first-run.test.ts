// `npm start` with no GitHub App: Probot's manifest flow serves a page that registers Terrapin from
// app.yml, returning to this server. Run as a user would: the real entry, in a child process.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { readFileSync } from 'node:fs';
import { needsAppRegistration } from '../../app/first-run.ts';
import { freePort } from '../helpers/free-port.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const appYml = parse(readFileSync(new URL('../../app.yml', import.meta.url), 'utf8'));
const children: ReturnType<typeof spawn>[] = [];

afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});

describe('first run', () => {
  test('needsAppRegistration: only without credentials, never in production', () => {
    expect(needsAppRegistration({})).toBe(true);
    expect(needsAppRegistration({ APP_ID: '1' })).toBe(true);
    expect(needsAppRegistration({ APP_ID: '1', PRIVATE_KEY_PATH: 'k.pem' })).toBe(false);
    expect(needsAppRegistration({ NODE_ENV: 'production' })).toBe(false);
  });

  test('npm start without an App serves the manifest flow for app.yml', async () => {
    const port = await freePort();
    const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PORT: String(port), NO_SMEE_SETUP: 'true' };
    const child = spawn(process.execPath, ['app/main.ts'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let output = '';
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));

    let page = '';
    for (let i = 0; i < 100 && !page; i++) {
      await new Promise((r) => setTimeout(r, 100));
      page = await fetch(`http://127.0.0.1:${port}/probot`).then((r) => r.text(), () => '');
    }
    expect(output).toContain('no GitHub App configured');
    const manifest = JSON.parse(/id="manifest" value='([^']*)'/.exec(page)![1]!.replace(/&quot;/g, '"'));
    expect(manifest).toMatchObject({
      name: 'Terrapin',
      public: false,
      // Back to the host the browser used.
      redirect_url: `http://127.0.0.1:${port}/probot/setup`,
      default_events: appYml.default_events,
      default_permissions: appYml.default_permissions,
    });
  });
});
