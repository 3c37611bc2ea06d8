// First start without a GitHub App: Probot's manifest flow serves a page on PORT that registers an App
// from app.yml on GitHub and writes its credentials to .env; the next `npm start` runs Terrapin.
import { existsSync } from 'node:fs';
import { run } from 'probot';

type Env = Record<string, string | undefined>;

/** Reads ./.env if present. Variables already in the environment win. */
export function loadDotEnv(path = '.env'): void {
  if (existsSync(path)) process.loadEnvFile(path);
}

export function needsAppRegistration(env: Env = process.env): boolean {
  // Production never waits for a browser: a missing credential is a config error there.
  if (env.NODE_ENV === 'production') return false;
  return !env.APP_ID || !(env.PRIVATE_KEY || env.PRIVATE_KEY_PATH);
}

export async function startAppRegistration(): Promise<void> {
  process.stderr.write(
    'terrapin: no GitHub App configured (APP_ID, PRIVATE_KEY). Starting Probot\'s setup: open the URL below to register one from app.yml.\n',
  );
  // Probot's setup mode only; it exits via its own restart message once .env is written.
  await run(() => {});
}
