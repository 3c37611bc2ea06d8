// Workflow entry point for the worker's bundler: export every workflow type here.
export { prWorkflow } from './pr.ts';
export { lockWorkflow } from './lock.ts';
export { driftWorkflow } from './drift.ts';
export { driftReconcileWorkflow } from './drift-reconcile.ts';
export { deployWorkflow } from './deploy.ts';
export { pushWorkflow } from './push.ts';
export { projectRun } from './project-run.ts';
export { operatorProjectsWorkflow } from './operator-projects.ts';
export { operatorRunWorkflow } from './operator-run.ts';
export { webhookReconcileWorkflow } from './webhook-reconcile.ts';
