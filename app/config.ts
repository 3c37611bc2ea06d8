// Server configuration from the environment: Probot's standard variables plus Terrapin's own.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { DEFAULT_TERRAFORM_ENV } from '../activities/terraform-env.ts';
import { DEFAULT_OPERATOR_POLICY, type OperatorPolicy } from '../activities/operator-policy.ts';
import { loadServerPolicy } from './server-policy.ts';
import type { ArtifactSettings } from '../activities/artifacts/index.ts';
import { githubBaseUrl, temporalSettings, type TemporalSettings } from './temporal-settings.ts';

// Light enough for the CLI to load alone (operator/connect.ts); re-exported where the server reads them.
export { githubBaseUrl, temporalSettings, type TemporalSettings } from './temporal-settings.ts';

export interface GithubSettings {
  appId: string;
  privateKey: string;
  webhookSecret: string;
  /** REST base URL: https://api.github.com, or <protocol>://<GHE_HOST>/api/v3. */
  baseUrl: string;
}

export interface ServerConfig {
  github: GithubSettings;
  temporal: TemporalSettings;
  port: number;
  logLevel: string;
  dataDir: string;
  /** Globs of owner/repo; empty → every repository the app is installed on. */
  repoAllowlist: string[];
  /** Globs of environment variable names terraform may see (TERRAPIN_TERRAFORM_ENV). */
  terraformEnv: string[];
  /** TERRAPIN_SERVER_CONFIG: what each repository may decide, and how repository code runs. */
  operatorPolicy: OperatorPolicy;
  /** TERRAPIN_MCP_TOKEN: the bearer token of the MCP endpoint at /mcp; unset → no endpoint. */
  mcpToken?: string;
  /**
   * TERRAPIN_WEBHOOK_RECONCILE_INTERVAL: minutes between runs of the webhook reconciler (failed deliveries sent
   * again, open PRs swept); `off` → no reconciler. Absent in configs built by hand (tests): no reconciler.
   */
  webhookReconcileMinutes?: number;
  /** TERRAPIN_ARTIFACTS_URL: where plans and logs are stored; absent → files under dataDir/artifacts. */
  artifacts?: ArtifactSettings;
}

export class ConfigError extends Error {}

type Env = Record<string, string | undefined>;

function privateKeyFrom(env: Env): string | undefined {
  if (env.PRIVATE_KEY) return env.PRIVATE_KEY.replace(/\\n/g, '\n');
  if (env.PRIVATE_KEY_PATH) return readFileSync(env.PRIVATE_KEY_PATH, 'utf8');
  return undefined;
}

const list = (value: string | undefined): string[] =>
  (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

export function loadConfig(env: Env = process.env): ServerConfig {
  const missing = ['APP_ID', 'WEBHOOK_SECRET'].filter((k) => !env[k]);
  const privateKey = privateKeyFrom(env);
  if (!privateKey) missing.push('PRIVATE_KEY or PRIVATE_KEY_PATH');
  if (missing.length) {
    throw new ConfigError(`Missing required environment: ${missing.join(', ')}. See .env.example.`);
  }
  const port = Number(env.PORT ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`PORT must be a port number, got "${env.PORT}"`);
  return {
    github: { appId: env.APP_ID!, privateKey: privateKey!, webhookSecret: env.WEBHOOK_SECRET!, baseUrl: githubBaseUrl(env) },
    temporal: temporalSettings(env),
    port,
    logLevel: env.LOG_LEVEL || 'info',
    dataDir: resolve(env.TERRAPIN_DATA_DIR || '.terrapin'),
    repoAllowlist: list(env.TERRAPIN_REPO_ALLOWLIST),
    terraformEnv: env.TERRAPIN_TERRAFORM_ENV === undefined ? DEFAULT_TERRAFORM_ENV : list(env.TERRAPIN_TERRAFORM_ENV),
    operatorPolicy: operatorPolicyFrom(env),
    ...mcpTokenFrom(env),
    ...webhookReconcileFrom(env),
    artifacts: artifactsFrom(env),
  };
}

/** TERRAPIN_ARTIFACTS_URL: a postgres:// URL (workers on several machines), or unset (files in the data dir). */
export function artifactsFrom(env: Env): ArtifactSettings {
  const url = env.TERRAPIN_ARTIFACTS_URL?.trim();
  if (!url) return { kind: 'filesystem' };
  if (!/^postgres(ql)?:\/\//.test(url)) throw new ConfigError('TERRAPIN_ARTIFACTS_URL must be a postgres:// (or postgresql://) URL');
  return { kind: 'postgres', url };
}

/** Whoever holds the token can start plans and request applies: a guessable one is refused at start. */
const MIN_MCP_TOKEN_LENGTH = 32;

function mcpTokenFrom(env: Env): { mcpToken?: string } {
  const token = env.TERRAPIN_MCP_TOKEN?.trim();
  if (!token) return {};
  if (token.length < MIN_MCP_TOKEN_LENGTH || /\s/.test(token)) {
    throw new ConfigError(`TERRAPIN_MCP_TOKEN must be at least ${MIN_MCP_TOKEN_LENGTH} characters without spaces (e.g. \`openssl rand -hex 32\`)`);
  }
  return { mcpToken: token };
}

export const DEFAULT_WEBHOOK_RECONCILE_MINUTES = 5;

function webhookReconcileFrom(env: Env): { webhookReconcileMinutes?: number } {
  const value = env.TERRAPIN_WEBHOOK_RECONCILE_INTERVAL?.trim();
  if (!value) return { webhookReconcileMinutes: DEFAULT_WEBHOOK_RECONCILE_MINUTES };
  if (value === 'off') return {};
  const minutes = Number(value);
  if (!Number.isInteger(minutes) || minutes < 1 || minutes > 24 * 60) {
    throw new ConfigError(`TERRAPIN_WEBHOOK_RECONCILE_INTERVAL must be a number of minutes (1 to 1440) or "off", got "${value}"`);
  }
  return { webhookReconcileMinutes: minutes };
}

/** TERRAPIN_SERVER_CONFIG, checked in full: an invalid policy file stops the start with every problem listed. */
function operatorPolicyFrom(env: Env): OperatorPolicy {
  const path = env.TERRAPIN_SERVER_CONFIG?.trim();
  if (!path) return DEFAULT_OPERATOR_POLICY;
  const { policy, errors } = loadServerPolicy(resolve(path));
  if (!policy) throw new ConfigError(`TERRAPIN_SERVER_CONFIG is invalid (${errors.length} ${errors.length === 1 ? 'problem' : 'problems'}):\n${errors.map((e) => `  ${e}`).join('\n')}`);
  return policy;
}
