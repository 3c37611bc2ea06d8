// The stand-in run workflow of scripts/bench-cli-records.ts: a `projectRun` that ends at once. Its records
// (search attributes) are given at start, so the benchmark's runs look to visibility like real ones.
export async function projectRun(): Promise<void> {}
