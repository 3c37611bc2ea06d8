import { describe, expect, it } from 'vitest';
import { ALLOWED_USAGE, checkDir, checkExtraArgs } from '../../app/extra-args.ts';

/** Strings must match exactly, patterns anywhere. */
function expectError(actual: string, expected: string | RegExp): void {
  if (typeof expected === 'string') expect(actual).toBe(expected);
  else expect(actual).toMatch(expected);
}

describe('checkExtraArgs accepts the allowlist', () => {
  const accepted: [string[], string[]][] = [
    [[], []],
    [['-target=aws_s3_bucket.logs'], ['-target=aws_s3_bucket.logs']],
    [['-target', 'module.app.aws_instance.web["a b"]'], ['-target=module.app.aws_instance.web["a b"]']],
    [['--replace=terraform_data.x'], ['-replace=terraform_data.x']],
    [['-var=name=a b', '-var', 'x=1=2'], ['-var=name=a b', '-var=x=1=2']],
    [['-var=empty='], ['-var=empty=']],
    // No shell runs terraform (execa passes an argument array), and terraform reads -var values as
    // literal strings or constant HCL (no functions): these are only unusual text.
    [['-var=x=$(rm -rf /)'], ['-var=x=$(rm -rf /)']],
    [['-var=x=`id`; echo pwned | sh'], ['-var=x=`id`; echo pwned | sh']],
    [['-var=x=${file("/etc/passwd")}'], ['-var=x=${file("/etc/passwd")}']],
    [['-var=x=../../etc/passwd'], ['-var=x=../../etc/passwd']],
    [['-refresh=false'], ['-refresh=false']],
    [['-refresh=true'], ['-refresh=true']],
    [['-refresh-only'], ['-refresh-only']],
    [['-refresh-only=false'], ['-refresh-only=false']],
    [['-parallelism=4'], ['-parallelism=4']],
    [['-parallelism', '20'], ['-parallelism=20']],
    [['-lock-timeout=30s'], ['-lock-timeout=30s']],
    [['-lock-timeout=1m30s'], ['-lock-timeout=1m30s']],
    [['-compact-warnings'], ['-compact-warnings']],
    [['-var-file=prod.tfvars'], ['-var-file=prod.tfvars']],
    [['-var-file', './env/../env/prod.tfvars'], ['-var-file=env/prod.tfvars']],
  ];
  it.each(accepted)('%j', (args, expected) => {
    expect(checkExtraArgs(args)).toEqual({ ok: true, args: expected });
  });

  it('resolves -var-file from the project dir, allowing paths up to the repository root', () => {
    expect(checkExtraArgs(['-var-file=../../common.tfvars'], { projectDir: 'infra/prod' })).toEqual({
      ok: true,
      args: ['-var-file=../../common.tfvars'],
    });
    expect(checkExtraArgs(['-var-file=../../../x.tfvars'], { projectDir: 'infra/prod' })).toEqual({
      ok: false,
      error: '-var-file: file "../../../x.tfvars" leaves the repository',
    });
  });
});

describe('checkExtraArgs refuses', () => {
  const refused: [string[], string | RegExp][] = [
    // Options that would move terraform, its state, its plan or its providers.
    [['-chdir=/'], `-chdir=/ is not allowed: Terrapin runs terraform in the project directory; use /plan -d <dir> to pick another. Allowed: ${ALLOWED_USAGE}`],
    [['--chdir=..'], /^--chdir=\.\. is not allowed: Terrapin runs terraform in the project directory/],
    [['-state=/tmp/other.tfstate'], /^-state=\/tmp\/other\.tfstate is not allowed: the state comes from the backend/],
    [['-state-out=../x'], /^-state-out=\.\.\/x is not allowed: the state comes from the backend/],
    [['-backup=x'], /^-backup=x is not allowed/],
    [['-backend-config=address=https://evil.example'], /^-backend-config=address=https:\/\/evil\.example is not allowed: the backend comes from the configuration/],
    [['-out=/tmp/plan'], /^-out=\/tmp\/plan is not allowed: Terrapin chooses where the plan is saved/],
    [['-plugin-dir=/tmp/evil'], /^-plugin-dir=\/tmp\/evil is not allowed: providers come from/],
    [['-destroy'], /^-destroy is not allowed: a plan that destroys everything cannot be asked for in a comment/],
    [['-lock=false'], /^-lock=false is not allowed: Terrapin always holds the state lock/],
    [['-input=true'], /^-input=true is not allowed/],
    [['-auto-approve'], `-auto-approve is not allowed. Allowed: ${ALLOWED_USAGE}`],
    [['-json'], /^-json is not allowed\. Allowed: /],
    [['-TARGET=x'], /^-TARGET=x is not allowed/],
    // -var-file outside the repository or in disguise.
    [['-var-file=/etc/passwd'], '-var-file: file "/etc/passwd" is absolute; give a path relative to the repository root'],
    [['-var-file=../secrets.tfvars'], '-var-file: file "../secrets.tfvars" leaves the repository'],
    [['-var-file=./../secrets.tfvars'], /leaves the repository/],
    [['-var-file', 'a/../../secrets.tfvars'], /leaves the repository/],
    [['-var-file=%2e%2e/secrets.tfvars'], '-var-file: file "%2e%2e/secrets.tfvars" looks URL-encoded; write it as plain text'],
    [['-var-file=..%2Fsecrets.tfvars'], /looks URL-encoded/],
    [['-var-file=..\\secrets.tfvars'], /uses backslashes/],
    [['-var-file=C:/secrets.tfvars'], /is absolute/],
    [['-var-file=~/secrets.tfvars'], /starts with ~, which is not expanded/],
    [['-var-file=.git/config'], '-var-file: file ".git/config" is inside .git, which holds no configuration'],
    [['-var-file=.terrapin/root--default/plan-error.log'], /is inside \.terrapin/],
    // Control characters: a NUL cuts the argument, a newline forges lines in logs and comments.
    [['-var=x=a\nb'], '"-var=x=a\\nb" contains a control character (such as NUL or a newline)'],
    [['-var=x=a\u0000b'], /contains a control character/],
    [['-var', 'x=a\rb'], /contains a control character/],
    [['-target=a\tb'], /contains a control character/],
    [['-var=x=a\u2028b'], /contains a control character/],
    [['-var=x=a\u0085b'], /contains a control character/],
    [['-target=x.\u202eevil'], /contains a control character/],
    // Malformed values.
    [['-var=x'], '-var=x needs the form -var=<name>=<value>'],
    [['-var==1'], /has an invalid variable name ""/],
    [['-var=a b=1'], /has an invalid variable name "a b"/],
    [['-target='], '-target= needs a resource address'],
    [['-target'], '-target needs a value: -target=<address>'],
    [['-target', '-destroy'], /^-target needs a value/],
    [['-refresh'], '-refresh needs =true or =false'],
    // Terraform would read "false" as a positional argument, not as the flag's value.
    [['-refresh', 'false'], '-refresh needs =true or =false'],
    [['-refresh=true', 'false'], /^unexpected argument false/],
    [['-refresh=no'], /needs =true or =false/],
    [['-refresh-only=yes'], /-refresh-only takes no value or =true \/ =false/],
    [['-parallelism=0'], /needs a whole number from 1 to 256/],
    [['-parallelism=9999'], /needs a whole number from 1 to 256/],
    [['-parallelism=-1'], /needs a whole number/],
    [['-lock-timeout=forever'], /needs a duration such as 30s/],
    // Positional arguments and flag terminators: terraform would treat what follows as a directory or plan.
    [['.'], /^unexpected argument \.: extra arguments are options/],
    [['/etc'], /^unexpected argument \/etc/],
    [['--', '-chdir=/'], /^unexpected argument --/],
    [['-'], /^unexpected argument -/],
    [['---target=x'], /^unexpected argument ---target=x/],
    [[''], /^unexpected argument ""/],
    // One bad argument among good ones refuses the lot.
    [['-refresh=false', '-target=x', '-out=p'], /^-out=p is not allowed/],
  ];
  it.each(refused)('%j', (args, error) => {
    const result = checkExtraArgs(args);
    expect(result.ok).toBe(false);
    if (!result.ok) expectError(result.error, error);
  });
});

describe('checkDir', () => {
  const accepted: [string, string][] = [
    ['infra/prod', 'infra/prod'],
    ['.', '.'],
    ['./', '.'],
    ['./infra//prod/', 'infra/prod'],
    ['infra/../network', 'network'],
    ['my dir', 'my dir'],
    ['a/b/../../c', 'c'],
    ['..infra', '..infra'],
    ['infra/..prod', 'infra/..prod'],
  ];
  it.each(accepted)('accepts %j as %j', (dir, normalised) => {
    expect(checkDir(dir)).toEqual({ ok: true, dir: normalised });
  });

  const refused: [string, string | RegExp][] = [
    ['../x', 'directory "../x" leaves the repository'],
    ['..', /leaves the repository/],
    ['./../x', /leaves the repository/],
    ['a/../../x', /leaves the repository/],
    ['a/b/../../../etc', /leaves the repository/],
    ['/', 'directory "/" is absolute; give a path relative to the repository root'],
    ['/etc/terraform', /is absolute/],
    ['//server/share', /is absolute/],
    ['C:/infra', /is absolute/],
    ['..\\x', 'directory "..\\\\x" uses backslashes; separate directories with /'],
    ['infra\\prod', /uses backslashes/],
    ['%2e%2e/x', 'directory "%2e%2e/x" looks URL-encoded; write it as plain text'],
    ['%2E%2E%2Fx', /looks URL-encoded/],
    ['infra%2f..%2f..', /looks URL-encoded/],
    ['~/infra', /starts with ~/],
    ['infra\u0000/../../x', 'directory "infra\\u0000/../../x" contains a control character (such as NUL or a newline)'],
    ['infra\n/plan', /contains a control character/],
    ['.git', 'directory ".git" is inside .git, which holds no configuration'],
    ['x/../.git/hooks', /is inside \.git/],
    ['.terrapin/root--default', /is inside \.terrapin/],
    ['', 'the directory is empty'],
  ];
  it.each(refused)('refuses %j', (dir, error) => {
    const result = checkDir(dir);
    expect(result.ok).toBe(false);
    if (!result.ok) expectError(result.error, error);
  });
});
