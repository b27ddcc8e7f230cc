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

const labelListMax = 20;

/** The settings the label handlers check: which labels are protected, which gated. */
export interface LabelSettings {
  readonly protectedLabels: readonly string[];
  readonly gatedLabels: readonly string[];
}

function labelSettingsFrom(row: ProjectSettingsRow | undefined): LabelSettings {
  return row === undefined
    ? { protectedLabels: defaultProtectedLabels, gatedLabels: [] }
    : {
        protectedLabels: JSON.parse(row.protectedLabels) as string[],
        gatedLabels: JSON.parse(row.gatedLabels) as string[],
      };
}

/**
 * A project's protected labels (only publishers may move them; default `production`) and gated labels (only
 * the promotion gate may move them; default none): its settings, or the defaults.
 */
export async function labelSettingsOf(tx: Queryable, projectId: string): Promise<LabelSettings> {
  return labelSettingsFrom(await findProjectSettings(tx, projectId));
}

function settingsMessage(projectId: string, row: ProjectSettingsRow | undefined) {
  const labels = labelSettingsFrom(row);
  return {
    project: projectId,
    protectedLabels: [...labels.protectedLabels],
    gatedLabels: [...labels.gatedLabels],
    ...(row === undefined ? {} : { updateTime: timestampFromMs(row.updatedAt) }),
  };
}

/** The update-mask paths of UpdateProjectSettings, each with its camelCase spelling. */
const maskPaths = {
  protected_labels: "protectedLabels",
  gated_labels: "gatedLabels",
} as const;
type MaskPath = keyof typeof maskPaths;

function maskPath(path: string): MaskPath | undefined {
  for (const [snake, camel] of Object.entries(maskPaths)) {
    if (path === snake || path === camel) return snake as MaskPath;
  }
  return undefined;
}

/** Every bad name of one label list (`field`: its request field), for the one INVALID_ARGUMENT answer. */
function labelListViolations(field: MaskPath, labels: readonly string[]): FieldViolation[] {
  const violations: FieldViolation[] = [];
  if (labels.length > labelListMax) {
    violations.push({ field, description: `at most ${labelListMax} labels` });
  }
  for (const [i, label] of labels.entries()) {
    const at = `${field}[${i}]`;
    if (!labelPattern.test(label)) violations.push({ field: at, description: "must match [a-z0-9_-]{1,36}" });
    else if (label === latestLabel) {
      violations.push({
        field: at,
        description: "`latest` cannot be moved by anyone",
        reason: "LABEL_RESERVED",
      });
    }
  }
  return violations;
}

/** Per-project settings of the registry (which labels are protected, which gated). */
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
    const masked = new Set<MaskPath>();
    for (const [i, path] of paths.entries()) {
      const known = maskPath(path);
      if (known === undefined) {
        violations.push({
          field: `update_mask.paths[${i}]`,
          description: `unknown path ${JSON.stringify(path)}; allowed: ${Object.keys(maskPaths).join(", ")}`,
        });
      } else masked.add(known);
    }
    violations.push(...labelListViolations("protected_labels", req.protectedLabels));
    violations.push(...labelListViolations("gated_labels", req.gatedLabels));
    const [first, ...rest] = violations;
    if (first !== undefined) throw new InvalidArgumentError([first, ...rest]);
    const sorted = (labels: readonly string[]) => [...new Set(labels)].sort();
    const row = await ctx.unitOfWork(async (tx, { audit }) => {
      const before = await findProjectSettings(tx, project);
      const old = labelSettingsFrom(before);
      const protectedLabels = masked.has("protected_labels")
        ? sorted(req.protectedLabels)
        : [...old.protectedLabels];
      const gatedLabels = masked.has("gated_labels") ? sorted(req.gatedLabels) : [...old.gatedLabels];
      const next: ProjectSettingsRow = {
        projectId: project,
        protectedLabels: JSON.stringify(protectedLabels),
        gatedLabels: JSON.stringify(gatedLabels),
        updatedBy: ctx.principal.subject,
        updatedAt: Math.max(now(), before?.updatedAt ?? 0),
      };
      await upsertProjectSettings(tx, next);
      await audit({
        action: "project.settings.update",
        resourceType: "project",
        resourceId: project,
        before: { protectedLabels: old.protectedLabels, gatedLabels: old.gatedLabels },
        after: { protectedLabels, gatedLabels },
      });
      return next;
    });
    return { settings: settingsMessage(project, row) };
  };

  return { getProjectSettings, updateProjectSettings };
}
