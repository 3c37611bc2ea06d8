// Preloaded by node-check.test.ts: this process now says it is Node 20, the way the check reads it.
Object.defineProperty(process.versions, 'node', { value: '20.11.1' });
