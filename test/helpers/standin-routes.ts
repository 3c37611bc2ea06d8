// The stand-in's route names for the calls the reliability suites count.
export const ROUTE = {
  createCheck: 'POST /repos/:owner/:repo/check-runs',
  updateCheck: 'PATCH /repos/:owner/:repo/check-runs/:check_run_id',
  listChecks: 'GET /repos/:owner/:repo/commits/:ref/check-runs',
  comment: 'POST /repos/:owner/:repo/issues/:issue_number/comments',
  listComments: 'GET /repos/:owner/:repo/issues/:issue_number/comments',
  editComment: 'PATCH /repos/:owner/:repo/issues/comments/:comment_id',
  reaction: 'POST /repos/:owner/:repo/issues/comments/:comment_id/reactions',
  permission: 'GET /repos/:owner/:repo/collaborators/:username/permission',
  commits: 'GET /repos/:owner/:repo/pulls/:pull_number/commits',
};
