// What a local run cannot do, said the same way wherever it is refused (kept apart from the executor so the
// CLI can refuse without loading it).
export const NEEDS_TEMPORAL = {
  approval: 'approval gates need Temporal (`npm start`): pass --auto-approve to apply what the plan shows without one',
  schedule: 'schedules need Temporal (`npm start`): a local run checks once, now',
  resume: 'resuming a run after a crash needs Temporal (`npm start`): a local run keeps no state across restarts',
} as const;
