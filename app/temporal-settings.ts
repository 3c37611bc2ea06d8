// Where Temporal is, and how to reach it, from the environment (TEMPORAL_*), and GitHub's API base URL: the
// parts of the server's configuration (app/config.ts) that the operator's CLI needs too, kept free of heavy
// imports so that `terrapin` starts quickly.

type Env = Record<string, string | undefined>;

export interface TemporalSettings {
  /** Unset → start the embedded dev server. */
  address?: string;
  namespace: string;
  taskQueue: string;
  uiUrl?: string;
  /** Temporal Cloud / mTLS: client cert and key paths, optional CA, or an API key. */
  tls?: { certPath?: string; keyPath?: string; caPath?: string; serverName?: string };
  apiKey?: string;
}

export function githubBaseUrl(env: Env): string {
  if (!env.GHE_HOST) return 'https://api.github.com';
  const protocol = env.GHE_PROTOCOL ?? 'https';
  return `${protocol}://${env.GHE_HOST}/api/v3`;
}

export function temporalSettings(env: Env): TemporalSettings {
  const tls =
    env.TEMPORAL_TLS_CERT || env.TEMPORAL_TLS_KEY || env.TEMPORAL_TLS_CA || env.TEMPORAL_TLS === 'true'
      ? {
          certPath: env.TEMPORAL_TLS_CERT,
          keyPath: env.TEMPORAL_TLS_KEY,
          caPath: env.TEMPORAL_TLS_CA,
          serverName: env.TEMPORAL_TLS_SERVER_NAME,
        }
      : undefined;
  return {
    address: env.TEMPORAL_ADDRESS || undefined,
    namespace: env.TEMPORAL_NAMESPACE || 'default',
    taskQueue: env.TEMPORAL_TASK_QUEUE || 'terrapin',
    uiUrl: env.TEMPORAL_UI_URL || undefined,
    tls,
    apiKey: env.TEMPORAL_API_KEY || undefined,
  };
}

