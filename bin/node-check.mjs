// Plain JavaScript on purpose: it must run on the old Node it is there to refuse. Terrapin runs its TypeScript
// natively (type stripping, import.meta.main), which needs Node 22.20 or newer; older Node would fail later with
// a stack trace ("Unknown file extension .ts"). Imported first by every entry point (`--import`), or run alone.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 20)) {
  process.stderr.write(
    `terrapin needs Node 22.20 or newer (this is v${process.versions.node}); install Node 24: https://nodejs.org/en/download or \`nvm install 24\`\n`,
  );
  process.exit(1);
}
