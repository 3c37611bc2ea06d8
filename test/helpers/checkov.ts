// checkov, the real policy engine the policy-check tests run: from TERRAPIN_CHECKOV or PATH (.ci/run
// installs it in a venv). The sandbox sees only listed host dirs, so its script's dir, its Python
// environment and the Python that environment was made from are returned for `runner.paths`.
import { execFileSync } from 'node:child_process';
import { readFile, realpath } from 'node:fs/promises';
import { dirname } from 'node:path';
import { findBinary } from '../../activities/sandbox.ts';

export const CHECKOV_MISSING =
  'checkov not found: install it (`python3 -m venv ~/.cache/terrapin-checkov && ~/.cache/terrapin-checkov/bin/pip install checkov`, as .ci/run does) and put it on PATH or set TERRAPIN_CHECKOV';

export async function findCheckov(): Promise<{ bin: string; dirs: string[] }> {
  const bin = process.env.TERRAPIN_CHECKOV || (await findBinary('checkov'));
  if (!bin) throw new Error(CHECKOV_MISSING);
  // The script's interpreter, from its #! line.
  const python = /^#!\s*(\S+)/.exec(await readFile(bin, 'utf8'))?.[1];
  if (!python) throw new Error(`${bin} does not start with a #! line naming its Python`);
  const [prefix, base] = execFileSync(python, ['-c', 'import sys; print(sys.prefix); print(sys.base_prefix)'], { encoding: 'utf8' }).trim().split('\n');
  const dirs = await Promise.all([dirname(bin), prefix!, base!, dirname(python)].map((d) => realpath(d)));
  return { bin, dirs: [...new Set(dirs)] };
}
