import type { EvaluationService } from "@autoforge/contracts/evaluation/v1";
import { type AccessRequirements, access } from "@autoforge/server";

/**
 * What each EvaluationService method needs of its caller, in the project the request names (`project`; empty =
 * the caller's default project, `user:{sub}` for a member token). The server kit resolves the project before
 * any handler runs: a project the caller is no member of answers NOT_FOUND ("project X not found"), a member
 * without the role PERMISSION_DENIED. Roles include the ones before them: viewer < editor < publisher < admin.
 * A token without project claims acts in its personal project with the role its `roles` claim gives there
 * (`user` = editor, `publisher`, `admin`), so the tokens of before projects work as they did.
 *
 * Service principals of a project (`project` claim, or a legacy `roles: ["service"]` token in its personal
 * project) are admitted nowhere here: none of these methods says `{ service: true }`, so they answer
 * PERMISSION_DENIED; service principals read prompts and their feed from prompt-service only. AdminService
 * (createAdminService) declares its own operator access (the global `admin` role).
 *
 * Every method is listed explicitly (no `default`), so a method added to the proto without an entry here
 * fails at `defineService`, and `test/access.test.ts` checks the table against the descriptor.
 */
export const evaluationAccess = {
  methods: {
    createEvaluation: access.editor(),
    startEvaluation: access.editor(),
    recordTestResults: access.editor(),
    streamTestResults: access.editor(),
    completeEvaluation: access.editor(),
    failEvaluation: access.editor(),
    getEvaluation: access.viewer(),
    listEvaluations: access.viewer(),
    listTestResults: access.viewer(),
    exportTestResults: access.viewer(),
    listItemStats: access.viewer(),
    getEvaluationSummary: access.viewer(),
    comparePromptVersions: access.viewer(),
    compareEvaluations: access.viewer(),
  },
} as const satisfies AccessRequirements<typeof EvaluationService>;
