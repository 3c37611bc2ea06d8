// Which of the worker's environment variables terraform (and its providers and provisioners) may see.
// Terraform runs with a minimal environment; cloud credentials and proxies are passed by name, and
// Terrapin's own secrets never, whatever the allowlist says.

/** Passed by default: the usual provider credentials, TF_VAR_/TF_TOKEN_ settings and proxies. */
export const DEFAULT_TERRAFORM_ENV = [
  'AWS_*',
  'AZURE_*',
  'ARM_*',
  'GOOGLE_*',
  'CLOUDSDK_*',
  'TF_VAR_*',
  'TF_TOKEN_*',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'NO_PROXY',
];

/** The GitHub App's and Temporal's credentials. */
const NEVER_PASSED = new Set([
  'APP_ID',
  'PRIVATE_KEY',
  'PRIVATE_KEY_PATH',
  'WEBHOOK_SECRET',
  'GITHUB_CLIENT_ID',
  'GITHUB_CLIENT_SECRET',
  'GITHUB_TOKEN',
  'GH_TOKEN',
  'TEMPORAL_API_KEY',
  'TEMPORAL_TLS_KEY',
  'TEMPORAL_TLS_CERT',
]);

const globToRegExp = (glob: string) =>
  new RegExp(`^${glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);

/** The variables of `env` whose names match one of `globs` (e.g. `AWS_*`), minus Terrapin's secrets. */
export function selectTerraformEnv(env: Record<string, string | undefined>, globs: readonly string[]): Record<string, string> {
  const patterns = globs.map(globToRegExp);
  return Object.fromEntries(
    Object.entries(env).filter(
      (entry): entry is [string, string] =>
        entry[1] !== undefined && !NEVER_PASSED.has(entry[0]) && patterns.some((p) => p.test(entry[0])),
    ),
  );
}

/** Names that hold credentials: their values are scrubbed from everything terraform and hooks print. */
const SECRET_NAME = /(SECRET|TOKEN|PASSWORD|PASSWD|PRIVATE|CREDENTIAL|API_?KEY|ACCESS_?KEY|_KEY$)/i;

/** The values of passed variables that are credentials (a provisioner could echo them). */
export function secretEnvValues(passEnv: Record<string, string>): string[] {
  return Object.entries(passEnv)
    .filter(([name, value]) => SECRET_NAME.test(name) && value.length >= 4)
    .map(([, value]) => value);
}
