import type {
  GetProjectSettingsRequest,
  PromptService,
  UpdateProjectSettingsRequest,
} from "@autoforge/contracts/prompt/v1";
import type { FieldViolation, ServiceHandlers } from "@autoforge/server";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { findProjectSettings, type Queryable, upsertProjectSettings } from "../db/repository.js";
import type { ProjectSettingsRow } from "../db/schema.js";
import { InvalidArgumentError } from "../domain/errors.js";
import { defaultProtectedLabels, latestLabel } from "../domain/labels.js";
import { labelPattern } from "../domain/limits.js";
import type { Ctx, HandlerDeps, PromptTx } from "./common.js";

type H = ServiceHandlers<typeof PromptService, PromptTx>;

const protectedLabelsMax = 20;

/** The labels of a project only publishers may move: its settings, or the default (`production`). */
export async function protectedLabelsOf(tx: Queryable, projectId: string): Promise<readonly string[]> {
  const row = await findProjectSettings(tx, projectId);
  return row === undefined ? defaultProtectedLabels : (JSON.parse(row.protectedLabels) as string[]);
}

function settingsMessage(projectId: string, row: ProjectSettingsRow | undefined) {
  return {
    project: projectId,
    protectedLabels:
      row === undefined ? [...defaultProtectedLabels] : (JSON.parse(row.protectedLabels) as string[]),
    ...(row === undefined ? {} : { updateTime: timestampFromMs(row.updatedAt) }),
  };
}

/** Per-project settings of the registry (which labels are protected). */
export function createProjectHandlers(deps: HandlerDeps) {
  const now = deps.now ?? Date.now;

  const getProjectSettings: H["getProjectSettings"] = async (_req: GetProjectSettingsRequest, ctx: Ctx) => {
    const project = ctx.project.id;
    const row = await ctx.unitOfWork((tx) => findProjectSettings(tx, project));
    return { settings: settingsMessage(project, row) };
  };

  const updateProjectSettings: H["updateProjectSettings"] = async (
    req: UpdateProjectSettingsRequest,
    ctx: Ctx,
  ) => {
    const project = ctx.project.id;
    const paths = req.updateMask?.paths ?? [];
    // every bad field of the request in one answer
    const violations: FieldViolation[] = [];
    if (paths.length === 0)
      violations.push({ field: "update_mask", description: "is required: name the fields to change" });
    for (const [i, path] of paths.entries()) {
      if (path !== "protected_labels" && path !== "protectedLabels") {
        violations.push({
          field: `update_mask.paths[${i}]`,
          description: `unknown path ${JSON.stringify(path)}; allowed: protected_labels`,
        });
      }
    }
    if (req.protectedLabels.length > protectedLabelsMax) {
      violations.push({ field: "protected_labels", description: `at most ${protectedLabelsMax} labels` });
    }
    for (const [i, label] of req.protectedLabels.entries()) {
      const field = `protected_labels[${i}]`;
      if (!labelPattern.test(label)) violations.push({ field, description: "must match [a-z0-9_-]{1,36}" });
      else if (label === latestLabel) {
        violations.push({
          field,
          description: "`latest` cannot be moved by anyone",
          reason: "LABEL_RESERVED",
        });
      }
    }
    const [first, ...rest] = violations;
    if (first !== undefined) throw new InvalidArgumentError([first, ...rest]);
    const labels = [...new Set(req.protectedLabels)].sort();
    const row = await ctx.unitOfWork(async (tx, { audit }) => {
      const before = await findProjectSettings(tx, project);
      const next: ProjectSettingsRow = {
        projectId: project,
        protectedLabels: JSON.stringify(labels),
        updatedBy: ctx.principal.subject,
        updatedAt: Math.max(now(), before?.updatedAt ?? 0),
      };
      await upsertProjectSettings(tx, next);
      await audit({
        action: "project.settings.update",
        resourceType: "project",
        resourceId: project,
        before: {
          protectedLabels: before === undefined ? defaultProtectedLabels : JSON.parse(before.protectedLabels),
        },
        after: { protectedLabels: labels },
      });
      return next;
    });
    return { settings: settingsMessage(project, row) };
  };

  return { getProjectSettings, updateProjectSettings };
}
