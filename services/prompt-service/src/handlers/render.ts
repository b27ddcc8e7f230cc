import { PromptKind, type PromptService, type RenderPromptRequest } from "@autoforge/contracts/prompt/v1";
import { type IncludeRef, type RenderableVersion, renderLimits, renderPrompt } from "@autoforge/render";
import type { ServiceHandlers } from "@autoforge/server";
import { chatMessageToProto, declarationsFromDb, jsonToStruct, variableInputs } from "../convert.js";
import { findPromptView, type Queryable, type VersionChoice } from "../db/repository.js";
import type { PromptRow } from "../db/schema.js";
import { FailedPreconditionError, promptDeleted, versionNotFound } from "../domain/errors.js";
import { latestLabel } from "../domain/labels.js";
import { asServiceError, bodyOf, effectiveDeclarations } from "../domain/prompt-body.js";
import { type Ctx, findShownPrompt, type HandlerDeps, type PromptTx } from "./common.js";

type H = ServiceHandlers<typeof PromptService, PromptTx>;

function renderable(
  prompt: PromptRow,
  version: { version: number; content: string; messages: string | null; variables: string | null },
): RenderableVersion {
  const body = bodyOf(version);
  return {
    promptId: prompt.id,
    name: prompt.name,
    version: version.version,
    body,
    variables: effectiveDeclarations(body, version.variables === null ? null : declarationsFromDb(version)),
  };
}

function includeChoice(ref: IncludeRef): VersionChoice {
  if (ref.version !== undefined) return { by: "number", version: ref.version };
  if (ref.label === undefined) return { by: "default" };
  return ref.label === latestLabel ? { by: "current" } : { by: "label", label: ref.label };
}

/** An include, looked up by name in the same project; undefined when it names nothing (the renderer says so). */
async function resolveInclude(tx: Queryable, projectId: string, ref: IncludeRef) {
  const choice = includeChoice(ref);
  const found = await findPromptView(tx, projectId, { name: ref.name }, choice);
  if (found === undefined || found.version === null) return undefined;
  if (found.prompt.deletedAt !== null) {
    const description = `include ${ref.raw}: prompt ${ref.name} is deleted`;
    throw new FailedPreconditionError(description, {
      reason: "INCLUDE_DELETED",
      metadata: { include: ref.raw, prompt: ref.name },
      preconditionViolations: [{ type: "STATE", subject: `${projectId}/${ref.name}`, description }],
    });
  }
  return renderable(found.prompt, found.version);
}

/**
 * RenderPrompt: the version GetPrompt would show, with its variables filled and includes resolved in one read
 * unit of work (one snapshot: every include is read as of the same commit).
 */
export function createRenderHandlers(_deps: HandlerDeps) {
  const renderPromptHandler: H["renderPrompt"] = async (req: RenderPromptRequest, ctx: Ctx) => {
    const project = ctx.project.id;
    const variables = variableInputs(req.variables);
    return ctx.unitOfWork(async (tx) => {
      const { found, version } = await findShownPrompt(tx, project, req);
      if (found.version === null) {
        throw versionNotFound(found.prompt.id, version);
      }
      if (found.prompt.deletedAt !== null) {
        throw promptDeleted(found.prompt.id, "rendering");
      }
      const root = renderable(found.prompt, found.version);
      let rendered: Awaited<ReturnType<typeof renderPrompt>>;
      try {
        rendered = await renderPrompt({
          root,
          variables,
          maxDepth: renderLimits.includeDepthMax,
          ...(req.label === "" ? {} : { rootLabel: req.label }),
          resolve: (ref) => resolveInclude(tx, project, ref),
        });
      } catch (e) {
        throw asServiceError(e);
      }
      const { body, used } = rendered;
      return {
        kind: found.prompt.kind === "chat" ? PromptKind.CHAT : PromptKind.TEXT,
        text: body.kind === "text" ? body.text : "",
        messages: body.kind === "chat" ? body.messages.map(chatMessageToProto) : [],
        modelConfig: jsonToStruct(found.version.modelConfig),
        resolved: used.map((u) => ({
          promptId: u.promptId,
          name: u.name,
          version: u.version,
          label: u.label ?? "",
        })),
      };
    });
  };

  return { renderPrompt: renderPromptHandler };
}
