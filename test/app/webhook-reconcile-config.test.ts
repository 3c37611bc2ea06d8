// TERRAPIN_WEBHOOK_RECONCILE_INTERVAL: minutes between webhook reconciler runs, on by default, `off` to disable.
import { generateKeyPairSync } from 'node:crypto';
import { expect, test } from 'vitest';
import { ConfigError, DEFAULT_WEBHOOK_RECONCILE_MINUTES, loadConfig } from '../../app/config.ts';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
const load = (interval?: string) => loadConfig({ APP_ID: '1', PRIVATE_KEY: privateKey, WEBHOOK_SECRET: 's', ...(interval === undefined ? {} : { TERRAPIN_WEBHOOK_RECONCILE_INTERVAL: interval }) });

test('the reconciler runs every few minutes unless told otherwise', () => {
  expect(load().webhookReconcileMinutes).toBe(DEFAULT_WEBHOOK_RECONCILE_MINUTES);
  expect(load('15').webhookReconcileMinutes).toBe(15);
  expect(load('off').webhookReconcileMinutes).toBeUndefined();
});

test.each(['0', '-5', '2.5', '5m', '1441'])('%s is refused at start', (value) => {
  expect(() => load(value)).toThrow(ConfigError);
  expect(() => load(value)).toThrow(/TERRAPIN_WEBHOOK_RECONCILE_INTERVAL/);
});
