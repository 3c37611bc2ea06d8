// Adds package-lock entries for optional platform builds (e.g. @swc/core-darwin-arm64) that this
// workplace's npm registry mirror does not serve: without them `npm ci` rejects the lockfile.
// Run `node scripts/complete-lockfile.mjs` after any `npm install` that rewrites package-lock.json.
import { readFileSync, writeFileSync } from 'node:fs';
const lock = JSON.parse(readFileSync('package-lock.json', 'utf8'));
const missing = [];
for (const [path, entry] of Object.entries(lock.packages)) {
  for (const [name, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const key = `node_modules/${name}`;
    if (!lock.packages[key] && !lock.packages[`${path}/${key}`]) missing.push([name, version]);
  }
}
const platform = (name) => {
  const m = /-(darwin|linux|win32|freebsd|android)-(arm64|x64|ia32|arm|ppc64|s390x|riscv64)(?:-(gnu|musl|gnueabihf|msvc))?$/.exec(name);
  if (!m) throw new Error(`cannot tell the platform of ${name}`);
  const [, os, cpu, abi] = m;
  return { cpu: [cpu], ...(os === 'linux' && abi !== 'musl' ? { libc: ['glibc'] } : abi === 'musl' ? { libc: ['musl'] } : {}), optional: true, os: [os] };
};
for (const [name, version] of missing) lock.packages[`node_modules/${name}`] = { version, ...platform(name) };
const sorted = Object.fromEntries(Object.entries(lock.packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))));
lock.packages = sorted;
writeFileSync('package-lock.json', JSON.stringify(lock, null, 2) + '\n');
console.log('added', missing.map(([n, v]) => `${n}@${v}`).join(', '));
