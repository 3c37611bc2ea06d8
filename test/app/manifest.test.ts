import { readFileSync } from 'node:fs';
import type { Client } from '@temporalio/client';
import type { Probot } from 'probot';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createApp } from '../../app/index.ts';
import { silentLogger } from './support.ts';

const manifest = parse(readFileSync(new URL('../../app.yml', import.meta.url), 'utf8'));

/** Every event name the app subscribes to, recorded from createApp's app.on calls. */
async function registeredEvents(): Promise<string[]> {
  const names: string[] = [];
  const recorder = { on: (name: string | string[]) => names.push(...[name].flat()) } as unknown as Probot;
  await createApp({ client: {} as Client, taskQueue: 'unused', logger: silentLogger })(recorder, { cwd: process.cwd(), addHandler: () => {} });
  return names;
}

describe('app.yml', () => {
  it('subscribes to exactly the webhook events the app handles', async () => {
    const handled = new Set((await registeredEvents()).map((n) => n.split('.')[0]));
    expect([...manifest.default_events].sort()).toEqual([...handled].sort());
  });

  it('asks for exactly the permissions Terrapin uses', () => {
    expect(manifest.default_permissions).toEqual({
      checks: 'write',
      pull_requests: 'write',
      issues: 'write',
      contents: 'read',
      metadata: 'read',
      members: 'read',
    });
  });

  it('is a private app, and leaves the setup redirect and webhook URL to the manifest flow', () => {
    expect(manifest.public).toBe(false);
    expect(manifest).toMatchObject({ name: 'Terrapin', url: expect.any(String) });
    // Values here would override what Probot's setup generates for the host it runs on.
    expect(manifest.redirect_url).toBeUndefined();
    expect(manifest.hook_attributes).toBeUndefined();
  });
});
