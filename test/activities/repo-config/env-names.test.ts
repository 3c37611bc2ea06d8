// `env` in `.terrapin.yml` can never set the plumbing of the process that runs terraform, git and hooks.
import { describe, expect, test } from 'vitest';
import { formatConfigError, parseRepoConfigFile } from '../../../activities/repo-config/index.ts';
import { plumbingEnvProblem } from '../../../activities/repo-config/env-names.ts';

const errorsOf = (text: string) => parseRepoConfigFile(text, { cpuCount: 1 }).errors.map(formatConfigError);

describe('plumbingEnvProblem', () => {
  const refused = [
    'PATH',
    'HOME',
    'USER',
    'SHELL',
    'TMPDIR',
    'LD_PRELOAD',
    'LD_LIBRARY_PATH',
    'DYLD_INSERT_LIBRARIES',
    'TF_CLI_ARGS',
    'TF_CLI_ARGS_plan',
    'TF_CLI_ARGS_apply',
    'TF_CLI_CONFIG_FILE',
    'TF_PLUGIN_CACHE_DIR',
    'TF_DATA_DIR',
    'TF_IN_AUTOMATION',
    'TF_INPUT',
    'TF_LOG',
    'TF_LOG_PATH',
    'TF_WORKSPACE',
    'GIT_DIR',
    'GIT_SSH_COMMAND',
    'GIT_CONFIG_COUNT',
    'SSH_AUTH_SOCK',
    'NODE_OPTIONS',
    'BASH_ENV',
    'ENV',
    'PYTHONPATH',
    'PROMPT_COMMAND',
    'IFS',
    'HTTPS_PROXY',
    'https_proxy',
    'http_proxy',
    'ALL_PROXY',
    'NO_PROXY',
    'SSL_CERT_FILE',
    'TERRAPIN_DATA_DIR',
    'TEMPORAL_ADDRESS',
    'Path',
  ];
  test.each(refused)('%s is refused', (name) => {
    expect(plumbingEnvProblem(name)).toMatch(new RegExp(`^${name} is part of how Terrapin runs terraform, git and hooks; \`env\` cannot set it`));
  });

  test.each(['AWS_REGION', 'TF_VAR_region', 'ARM_SUBSCRIPTION_ID', 'GOOGLE_PROJECT', 'APP_ENV', 'TF_TOKEN_app_terraform_io', 'PATHS', 'MY_PATH'])('%s is allowed', (name) => {
    expect(plumbingEnvProblem(name)).toBeUndefined();
  });
});

describe('in .terrapin.yml: a config error with file:line:col, in defaults and projects', () => {
  test('each refused name is reported at its key; the allowed ones pass', () => {
    const text = [
      'defaults:',
      '  env:',
      '    AWS_REGION: eu-west-1',
      '    PATH: /tmp/evil',
      '    LD_PRELOAD: /tmp/evil.so',
      'projects:',
      '  - name: app',
      '    dir: app',
      '    env: { TF_CLI_ARGS_plan: "-var x=1", GIT_SSH_COMMAND: "sh -c evil" }',
      '',
    ].join('\n');
    expect(errorsOf(text)).toEqual([
      '.terrapin.yml:4:5: defaults.env.PATH: PATH is part of how Terrapin runs terraform, git and hooks; `env` cannot set it',
      '.terrapin.yml:5:5: defaults.env.LD_PRELOAD: LD_PRELOAD is part of how Terrapin runs terraform, git and hooks; `env` cannot set it (nor any LD_* variable)',
      '.terrapin.yml:9:12: projects[0].env.TF_CLI_ARGS_plan: TF_CLI_ARGS_plan is part of how Terrapin runs terraform, git and hooks; `env` cannot set it (nor any TF_CLI_ARGS* variable)',
      '.terrapin.yml:9:42: projects[0].env.GIT_SSH_COMMAND: GIT_SSH_COMMAND is part of how Terrapin runs terraform, git and hooks; `env` cannot set it (nor any GIT_* variable)',
    ]);
  });
});
