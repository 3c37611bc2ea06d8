import { describe, expect, it } from 'vitest';
import { parseComment, tokenize } from '../../app/commands.ts';
import type { CommandParse } from '../../shared/contracts.ts';

const cmd = (name: string, rest: Record<string, unknown> = {}): CommandParse =>
  ({ kind: 'command', command: { name, extraArgs: [], ...rest } }) as CommandParse;

const commands: [string, CommandParse][] = [
  ['/plan', cmd('plan')],
  ['/approve', cmd('approve')],
  ['/apply', cmd('apply')],
  ['/unlock', cmd('unlock')],
  ['/cancel', cmd('cancel')],
  ['/drift', cmd('drift')],
  ['/help', cmd('help')],
  ['/plan -p network', cmd('plan', { project: 'network' })],
  ['/plan -d infra/prod', cmd('plan', { dir: 'infra/prod' })],
  ['/plan -d infra/prod -w staging', cmd('plan', { dir: 'infra/prod', workspace: 'staging' })],
  ['/plan -w staging -d infra/prod', cmd('plan', { dir: 'infra/prod', workspace: 'staging' })],
  ['/plan -- -target=aws_s3_bucket.logs', cmd('plan', { extraArgs: ['-target=aws_s3_bucket.logs'] })],
  // Extra args come back checked, one canonical token each.
  [
    `/plan -p app -- -var 'name=a b' -var "x=1 2"`,
    cmd('plan', { project: 'app', extraArgs: ['-var=name=a b', '-var=x=1 2'] }),
  ],
  ['/plan -d infra/prod -- -var-file=../common.tfvars', cmd('plan', { dir: 'infra/prod', extraArgs: ['-var-file=../common.tfvars'] })],
  ['/plan -- -refresh=false -compact-warnings', cmd('plan', { extraArgs: ['-refresh=false', '-compact-warnings'] })],
  // -d comes back normalised.
  ['/plan -d ./infra//prod/', cmd('plan', { dir: 'infra/prod' })],
  ['/plan -d infra/../network -w staging', cmd('plan', { dir: 'network', workspace: 'staging' })],
  ['/plan --', cmd('plan')],
  ['/plan -d "my dir"', cmd('plan', { dir: 'my dir' })],
  ['/approve -p network', cmd('approve', { project: 'network' })],
  ['/apply -p network', cmd('apply', { project: 'network' })],
  ['/drift -p network', cmd('drift', { project: 'network' })],
  // Case-insensitive command and flags; values keep their case.
  ['/PLAN -P Network', cmd('plan', { project: 'Network' })],
  ['/Apply', cmd('apply')],
  // Leading whitespace, trailing whitespace, CRLF, only the first line counts.
  ['   /plan  ', cmd('plan')],
  ['\n\n  /apply\nthanks!', cmd('apply')],
  ['/unlock\r\n/apply', cmd('unlock')],
  ['/help\n/plan -x', cmd('help')],
];

const nothing: [string, CommandParse][] = [
  ['', { kind: 'none' }],
  ['LGTM, ship it', { kind: 'none' }],
  ['please /apply', { kind: 'none' }],
  ['thanks\n/apply', { kind: 'none' }],
  ['```\n/apply\n```', { kind: 'none' }],
  ['  ~~~\n/apply\n~~~', { kind: 'none' }],
  ['> /apply\nwhy did you do that?', { kind: 'none' }],
  ['/path/to/main.tf looks wrong', { kind: 'none' }],
  ['/ apply', { kind: 'none' }],
  // Hidden characters around something that is not a command stay ordinary text.
  ['\u202e/ylppa', { kind: 'none' }],
  ['looks good\u200b', { kind: 'none' }],
  ['/ship\u200bit', { kind: 'none' }],
];

const unknown: [string, CommandParse][] = [
  ['/plna', { kind: 'unknown', word: 'plna', suggestion: 'plan' }],
  ['/aply -p x', { kind: 'unknown', word: 'aply', suggestion: 'apply' }],
  ['/Aprove', { kind: 'unknown', word: 'aprove', suggestion: 'approve' }],
  ['/unlcok', { kind: 'unknown', word: 'unlcok', suggestion: 'unlock' }],
  ['/drfit', { kind: 'unknown', word: 'drfit', suggestion: 'drift' }],
  ['/cancle', { kind: 'unknown', word: 'cancle', suggestion: 'cancel' }],
  ['/hlep', { kind: 'unknown', word: 'hlep', suggestion: 'help' }],
  ['/atlantis plan', { kind: 'unknown', word: 'atlantis', suggestion: 'plan' }],
];

const invalid: [string, string, RegExp][] = [
  ['/plan -x', 'plan', /unknown option -x for \/plan; usage: \/plan \[-p <project>\] \[-d <dir>\] \[-w <workspace>\] \[-- extra args\]/],
  ['/plan -p', 'plan', /-p needs a project name/],
  ['/plan -d', 'plan', /-d needs a directory/],
  ['/plan -d infra -w', 'plan', /-w needs a workspace name/],
  ['/plan -p -d infra', 'plan', /-p needs a project name/],
  ['/plan -p app -d infra', 'plan', /either -p <project> or -d <dir>, not both/],
  ['/plan -w staging', 'plan', /-w <workspace> needs -d <dir>/],
  ['/plan -p a -p b', 'plan', /-p is given more than once/],
  ['/plan app', 'plan', /unexpected argument "app" for \/plan/],
  [`/plan -- -var 'oops`, 'plan', /unterminated ' quote/],
  ['/apply -d infra', 'apply', /\/apply does not accept -d; usage: \/apply \[-p <project>\]$/],
  ['/approve -w ws', 'approve', /\/approve does not accept -w/],
  ['/drift -d infra', 'drift', /\/drift does not accept -d/],
  ['/apply -- -auto-approve', 'apply', /\/apply does not take extra arguments after --/],
  ['/unlock -p app', 'unlock', /\/unlock takes no options \(got -p\)/],
  ['/cancel now', 'cancel', /unexpected argument "now" for \/cancel; it takes no options/],
  ['/help -v', 'help', /unknown option -v for \/help; it takes no options/],
  // Directories that leave the checkout, and terraform options off the allowlist.
  ['/plan -d ../x', 'plan', /^directory "\.\.\/x" leaves the repository$/],
  ['/plan -d a/../../x', 'plan', /^directory "a\/\.\.\/\.\.\/x" leaves the repository$/],
  ['/plan -d /etc', 'plan', /^directory "\/etc" is absolute/],
  ['/plan -d %2e%2e -w default', 'plan', /looks URL-encoded/],
  ['/plan -d ..\\x', 'plan', /uses backslashes/],
  ['/plan -- -chdir=/', 'plan', /^-chdir=\/ is not allowed: Terrapin runs terraform in the project directory; use \/plan -d <dir> to pick another\. Allowed: -target=<address>, /],
  ['/plan -- -destroy', 'plan', /^-destroy is not allowed/],
  ['/plan -p app -- -state-out=/tmp/s', 'plan', /^-state-out=\/tmp\/s is not allowed/],
  ['/plan -- -var-file=../secrets.tfvars', 'plan', /^-var-file: file "\.\.\/secrets\.tfvars" leaves the repository$/],
  ['/plan -d infra -- -var-file=../../x.tfvars', 'plan', /leaves the repository/],
  ['/plan -- main.tf', 'plan', /^unexpected argument main\.tf: extra arguments are options/],
  // What is shown is not what was sent: refused with a reply rather than run or silently dropped.
  ['/pl\u200ban', 'plan', /^it contains invisible or direction-changing characters \(U\+200B\); type it again without them$/],
  ['/apply\u202e', 'apply', /\(U\+202E\)/],
  ['/approve\u2066 -p web\u2069', 'approve', /\(U\+2066, U\+2069\)/],
  ['/plan -- -target=x.\u202eevil', 'plan', /\(U\+202E\)/],
  ['/help\u0000', 'help', /\(U\+0000\)/],
  ['/plan\t-p web\u200b', 'plan', /\(U\+200B\)/],
];

describe('parseComment', () => {
  it.each(commands)('%j is a command', (body, expected) => {
    expect(parseComment(body)).toEqual(expected);
  });

  it.each(nothing)('%j is not a command', (body, expected) => {
    expect(parseComment(body)).toEqual(expected);
  });

  it.each(unknown)('%j is an unknown command with a suggestion', (body, expected) => {
    expect(parseComment(body)).toEqual(expected);
  });

  it.each(invalid)('%j is an invalid /%s', (body, name, message) => {
    const parse = parseComment(body);
    expect(parse).toMatchObject({ kind: 'invalid', name });
    expect(parse.kind === 'invalid' && parse.error).toMatch(message);
  });
});

describe('/approve-policies', () => {
  it('takes -p and nothing else', () => {
    expect(parseComment('/approve-policies')).toEqual({ kind: 'command', command: { name: 'approve-policies', extraArgs: [] } });
    expect(parseComment('/Approve-Policies -p network')).toEqual({ kind: 'command', command: { name: 'approve-policies', project: 'network', extraArgs: [] } });
    expect(parseComment('/approve-policies -d infra')).toMatchObject({ kind: 'invalid', name: 'approve-policies' });
    expect(parseComment('/approve-policies -- -destroy')).toMatchObject({ kind: 'invalid', error: '/approve-policies does not take extra arguments after --' });
    expect(parseComment('/approve-policy')).toEqual({ kind: 'unknown', word: 'approve-policy', suggestion: 'approve-policies' });
  });
});

describe('tokenize', () => {
  it('keeps quoted whitespace and drops the quotes', () => {
    expect(tokenize(` a  'b c' "d 'e'" f"g h"i ''`)).toEqual(['a', 'b c', "d 'e'", 'fg hi', '']);
  });
});
