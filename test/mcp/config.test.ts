// TERRAPIN_MCP_TOKEN: the MCP endpoint's bearer token, read with the rest of the server's settings.
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../app/config.ts';
import { tokenMatches } from '../../mcp/http.ts';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
const base = { APP_ID: '1', PRIVATE_KEY: privateKey, WEBHOOK_SECRET: 's' };

describe('TERRAPIN_MCP_TOKEN', () => {
  it('unset or empty: no endpoint', () => {
    expect(loadConfig(base).mcpToken).toBeUndefined();
    expect(loadConfig({ ...base, TERRAPIN_MCP_TOKEN: '  ' }).mcpToken).toBeUndefined();
  });

  it('a token of 32 characters or more is used as written', () => {
    const token = 'a'.repeat(31) + 'b';
    expect(loadConfig({ ...base, TERRAPIN_MCP_TOKEN: ` ${token}\n` }).mcpToken).toBe(token);
  });

  it('a short token, or one with spaces, stops the start with one line saying why', () => {
    for (const TERRAPIN_MCP_TOKEN of ['secret', `${'a'.repeat(20)} ${'b'.repeat(20)}`]) {
      expect(() => loadConfig({ ...base, TERRAPIN_MCP_TOKEN })).toThrow(ConfigError);
      expect(() => loadConfig({ ...base, TERRAPIN_MCP_TOKEN })).toThrow('TERRAPIN_MCP_TOKEN must be at least 32 characters without spaces (e.g. `openssl rand -hex 32`)');
    }
  });

  it('tokens match only when equal, whatever their lengths', () => {
    const token = 'x'.repeat(40);
    expect(tokenMatches(token, token)).toBe(true);
    for (const other of ['', token.slice(1), `${token}x`, 'y'.repeat(40)]) expect(tokenMatches(other, token)).toBe(false);
  });
});

describe('the tools on the webhook server', () => {
  it('take its Temporal, data dir and App credentials, with links to github.com or the GHE host', async () => {
    const { mcpDeps } = await import('../../mcp/http.ts');
    const client = {} as Parameters<typeof mcpDeps>[1];
    const dotcom = loadConfig({ ...base, TEMPORAL_TASK_QUEUE: 'q', TERRAPIN_DATA_DIR: '/data' });
    expect(mcpDeps(dotcom, client)).toEqual({ client, taskQueue: 'q', dataDir: '/data', webUrl: 'https://github.com', github: { appId: '1', privateKey, baseUrl: 'https://api.github.com' } });
    const ghe = loadConfig({ ...base, GHE_HOST: 'ghe.example.com' });
    expect(mcpDeps(ghe, client)).toMatchObject({ webUrl: 'https://ghe.example.com', github: { baseUrl: 'https://ghe.example.com/api/v3' } });
  });
});
