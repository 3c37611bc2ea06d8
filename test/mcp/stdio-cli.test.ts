// `terrapin mcp` when it cannot serve: one line on stderr, nothing on stdout (the agent's protocol channel),
// the documented exit code; never a stack trace.
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { freePort } from '../helpers/free-port.ts';
import { ROOT } from './clients.ts';

const terrapin = (env: Record<string, string>) =>
  execa(process.execPath, [join(ROOT, 'bin', 'terrapin.mjs'), 'mcp'], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, extendEnv: false, reject: false, input: '', timeout: 60_000 });

describe('terrapin mcp', () => {
  it('no Temporal to talk to: one line saying what to do, exit 4 (unavailable), stdout untouched', async () => {
    const port = await freePort();
    const r = await terrapin({ TERRAPIN_EMBEDDED_TEMPORAL_PORT: String(port) });
    expect(r.exitCode).toBe(4);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`terrapin: no Temporal at 127.0.0.1:${port} — start Terrapin (\`npm start\`) or set TEMPORAL_ADDRESS`);
  });

  it('--help says what it serves and how an agent starts it', async () => {
    const r = await execa(process.execPath, [join(ROOT, 'bin', 'terrapin.mjs'), 'mcp', '--help'], { cwd: ROOT, reject: false });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('serve the MCP tools for AI agents on stdio');
    expect(r.stdout).toContain('"command": "node", "args": ["/path/to/terrapin/bin/terrapin.mjs", "mcp"]');
  });
});
