// Environment names `.terrapin.yml` `env` may never set: the plumbing of the process that runs terraform,
// git and hooks. Setting them would let a repository's config change which binaries run (PATH, LD_PRELOAD),
// what terraform does beyond the plan that was reviewed (TF_CLI_ARGS*, TF_CLI_CONFIG_FILE), where its files
// go (TF_DATA_DIR, TF_PLUGIN_CACHE_DIR, TF_LOG_PATH) or what git and the shells do (GIT_*, BASH_ENV, …).
// Proxy variables are refused too: a repository must not route the provider traffic (and the credentials
// it carries) through a host of its choosing; the operator sets proxies for the worker instead.

/** Exact names, compared case-sensitively as the kernel does (and upper-case, as some tools fold them). */
const EXACT = new Set([
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'SHELL',
  'TMPDIR',
  'TMP',
  'TEMP',
  'PWD',
  'OLDPWD',
  'IFS',
  'ENV',
  'BASH_ENV',
  'CDPATH',
  'PS4',
  'PROMPT_COMMAND',
  'SHELLOPTS',
  'BASHOPTS',
  'GLOBIGNORE',
  'NODE_OPTIONS',
  'NODE_PATH',
  'PYTHONPATH',
  'PYTHONSTARTUP',
  'PYTHONHOME',
  'PERL5LIB',
  'PERL5OPT',
  'RUBYOPT',
  'RUBYLIB',
  'TF_CLI_CONFIG_FILE',
  'TERRAFORM_CONFIG',
  'TF_PLUGIN_CACHE_DIR',
  'TF_DATA_DIR',
  'TF_IN_AUTOMATION',
  'TF_INPUT',
  'TF_LOG',
  'TF_LOG_CORE',
  'TF_LOG_PROVIDER',
  'TF_LOG_PATH',
  'TF_WORKSPACE',
  'TF_REGISTRY_DISCOVERY_RETRY',
  'TF_PLUGIN_CACHE_MAY_BREAK_DEPENDENCY_LOCK_FILE',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'ALL_PROXY',
  'NO_PROXY',
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
  'CURL_CA_BUNDLE',
  'REQUESTS_CA_BUNDLE',
  'NODE_EXTRA_CA_CERTS',
]);

/** Name prefixes: every variable of these families. */
const PREFIXES = ['LD_', 'DYLD_', 'TF_CLI_ARGS', 'GIT_', 'SSH_', 'TERRAPIN_', 'TEMPORAL_', 'BASH_FUNC_'];

/** Why `name` may not be set by a repository's `env`, or undefined when it may. */
export function plumbingEnvProblem(name: string): string | undefined {
  const upper = name.toUpperCase();
  const family = PREFIXES.find((p) => upper.startsWith(p));
  if (EXACT.has(upper) || family) {
    return `${name} is part of how Terrapin runs terraform, git and hooks; \`env\` cannot set it${family ? ` (nor any ${family}* variable)` : ''}`;
  }
  return undefined;
}
