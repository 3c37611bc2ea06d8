// Logs never carry credentials or webhook payloads, whichever way they are handed to the logger.
import { Writable } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { createLogger, scrubSecrets } from '../../app/logger.ts';

function capture() {
  const lines: string[] = [];
  const logger = createLogger('info', new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) }));
  return { logger, text: () => lines.join('') };
}

const TOKEN = 'ghs_abcdefghijklmnopqrstuvwxyz0123456789';

describe('scrubSecrets', () => {
  test.each([
    ['an installation token', `cloning with ${TOKEN}`],
    ['a personal token', 'ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZ012345'],
    ['a fine-grained token', 'github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz'],
    ['a JWT', 'eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiIxMjM0NSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ'],
    ['a token in a URL', 'https://x-access-token:s3cr3t-value@github.com/acme/infra.git'],
    ['a PEM key', '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----'],
  ])('removes %s', (_what, text) => {
    const out = scrubSecrets(text);
    expect(out).toContain('[REDACTED]');
    expect(out).not.toMatch(/ghs_|ghp_|github_pat_|eyJ|s3cr3t|MIIEow/);
  });

  test('removes configured secret values and keeps ordinary text', () => {
    expect(scrubSecrets('password=hunter22 for plan', ['hunter22'])).toBe('password=[REDACTED] for plan');
    expect(scrubSecrets('Plan: 1 to add, 0 to change, 0 to destroy.')).toBe('Plan: 1 to add, 0 to change, 0 to destroy.');
  });
});

describe('createLogger', () => {
  test('redacts secret-named keys at any depth and token-shaped strings in messages', () => {
    const { logger, text } = capture();
    logger.info({ token: TOKEN, auth: { privateKey: 'PEM' }, req: { headers: { authorization: 'Bearer x' } } }, `got ${TOKEN}`);
    expect(text()).not.toContain(TOKEN);
    expect(text()).not.toContain('PEM"');
    expect(text()).not.toContain('Bearer x');
    expect(JSON.parse(text()).msg).toBe('got [REDACTED]');
  });

  test('logs an error without the event or request it carries', () => {
    const { logger, text } = capture();
    const err = Object.assign(new Error('signal failed'), {
      event: { id: 'd1', name: 'pull_request', payload: { pull_request: { title: 'Secret project plans' } } },
      request: { headers: { authorization: `token ${TOKEN}` } },
    });
    logger.error({ err }, 'webhook failed');
    const line = JSON.parse(text());
    expect(line.err).toMatchObject({ type: 'Error', message: 'signal failed' });
    expect(text()).not.toContain('Secret project plans');
    expect(text()).not.toContain(TOKEN);
  });
});
