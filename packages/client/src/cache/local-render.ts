import {
  type ChatMessage,
  ChatRole,
  type Prompt,
  PromptKind,
  type ResolvedPrompt,
  type TemplateVariable,
  VariableType,
} from "@autoforge/contracts/prompt/v1";
import {
  type ChatMessage as BodyMessage,
  type ChatRole as BodyRole,
  type VariableType as DeclarationType,
  type IncludeRef,
  inferDeclarations,
  type JsonValue,
  type PromptBody,
  type RenderableVersion,
  RenderError,
  renderLimits,
  renderPrompt,
  type VariableDeclaration,
} from "@autoforge/render";
import { toJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { CachedPrompt, PromptSelector, RenderedPrompt } from "./types.js";

/**
 * RenderPrompt on the client: prompt-service's handler (services/prompt-service/src/handlers/render.ts) with
 * its database reads replaced by cache reads. Same renderer, same include resolution (by name in the root's
 * project: `{{> name}}` by default, `@label`, `@latest`, `@3`), same checks in the same order and the same
 * status codes and messages, so a render from the cache equals the server's answer.
 */

const roleNames: Record<ChatRole, BodyRole> = {
  [ChatRole.UNSPECIFIED]: "user",
  [ChatRole.SYSTEM]: "system",
  [ChatRole.USER]: "user",
  [ChatRole.ASSISTANT]: "assistant",
  [ChatRole.TOOL]: "tool",
};
const roleEnums: Record<BodyRole, ChatRole> = {
  system: ChatRole.SYSTEM,
  user: ChatRole.USER,
  assistant: ChatRole.ASSISTANT,
  tool: ChatRole.TOOL,
};
const typeNames: Record<VariableType, DeclarationType> = {
  [VariableType.UNSPECIFIED]: "string",
  [VariableType.STRING]: "string",
  [VariableType.NUMBER]: "number",
  [VariableType.BOOLEAN]: "boolean",
  [VariableType.ENUM]: "enum",
  [VariableType.JSON]: "json",
};

function declaration(v: TemplateVariable): VariableDeclaration {
  const d = v.defaultValue;
  return {
    name: v.name,
    type: typeNames[v.type],
    required: v.required,
    ...(d === undefined || d.kind.case === undefined
      ? {}
      : { defaultValue: toJson(ValueSchema, d) as JsonValue }),
    enumValues: [...v.enumValues],
    description: v.description,
  };
}

function bodyOf(prompt: Prompt): PromptBody {
  const chat =
    prompt.kind === PromptKind.CHAT || (prompt.kind === PromptKind.UNSPECIFIED && prompt.messages.length > 0);
  if (!chat) return { kind: "text", text: prompt.content };
  return {
    kind: "chat",
    messages: prompt.messages.map(
      (m): BodyMessage =>
        m.name === ""
          ? { role: roleNames[m.role], content: m.content }
          : { role: roleNames[m.role], content: m.content, name: m.name },
    ),
  };
}

/**
 * A prompt as the renderer takes it. A version that declares nothing renders with each `{{var}}` as a required
 * string (the server stores no declarations then and shows none; a version that declares an empty list can
 * use no variable at all, so inferring gives the same empty list).
 */
export function renderableOf(prompt: Prompt, fallbackName: string): RenderableVersion {
  const body = bodyOf(prompt);
  return {
    promptId: prompt.id === "" ? `fallback:${fallbackName}` : prompt.id,
    name: prompt.name === "" ? fallbackName : prompt.name,
    version: prompt.version,
    body,
    variables: prompt.variables.length === 0 ? inferDeclarations(body) : prompt.variables.map(declaration),
  };
}

/** prompt-service's mapping of the renderer's errors (domain/prompt-body.ts `asServiceError`). */
function asConnectError(e: unknown): unknown {
  if (!(e instanceof RenderError)) return e;
  if (e.kind === "failed_precondition") return new ConnectError(e.message, Code.FailedPrecondition);
  const field = e.field ?? "variables";
  const prefix = `${field}: `;
  const reason = e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message;
  return new ConnectError(`${field}: ${reason}`, Code.InvalidArgument);
}

function chatMessage(m: BodyMessage): ChatMessage {
  return {
    $typeName: "autoforge.prompt.v1.ChatMessage",
    role: roleEnums[m.role],
    content: m.content,
    name: m.name ?? "",
  };
}

function includeSelector(ref: IncludeRef, project: string | undefined): PromptSelector {
  if (ref.version !== undefined) return { version: ref.version, project };
  if (ref.label !== undefined) return { label: ref.label, project };
  return { project };
}

export interface LocalRenderDeps {
  get(name: string, options: PromptSelector): Promise<CachedPrompt>;
  renderable(read: CachedPrompt, name: string): RenderableVersion;
}

export async function renderLocally(
  deps: LocalRenderDeps,
  name: string,
  variables: Record<string, JsonValue>,
  options: PromptSelector | undefined,
): Promise<RenderedPrompt> {
  // the request validator's limit (RenderPromptRequest.variables)
  let count = 0;
  for (const _ in variables) count++;
  if (count > renderLimits.variablesMax) {
    throw new ConnectError(`variables: at most ${renderLimits.variablesMax} variables`, Code.InvalidArgument);
  }
  const root = await deps.get(name, options ?? {});
  const { prompt } = root;
  if (prompt.deleteTime !== undefined) {
    throw new ConnectError(
      `prompt ${prompt.id} is deleted: restore it before rendering`,
      Code.FailedPrecondition,
    );
  }
  let stale = root.stale;
  const project = options?.project;
  const label = options?.label;
  let rendered: Awaited<ReturnType<typeof renderPrompt>>;
  try {
    rendered = await renderPrompt({
      root: deps.renderable(root, name),
      variables,
      maxDepth: renderLimits.includeDepthMax,
      ...(label === undefined || label === "" ? {} : { rootLabel: label }),
      resolve: async (ref) => {
        let read: CachedPrompt;
        try {
          read = await deps.get(ref.name, includeSelector(ref, project));
        } catch (e) {
          // names nothing (no such prompt, label or version): the renderer says so, naming the chain
          if (e instanceof ConnectError && e.code === Code.NotFound) return undefined;
          throw e;
        }
        if (read.stale) stale = true;
        if (read.prompt.deleteTime !== undefined) {
          throw new ConnectError(
            `include ${ref.raw}: prompt ${ref.name} is deleted`,
            Code.FailedPrecondition,
          );
        }
        return deps.renderable(read, ref.name);
      },
    });
  } catch (e) {
    throw asConnectError(e);
  }
  const { body, used } = rendered;
  return {
    kind: prompt.kind === PromptKind.CHAT ? PromptKind.CHAT : PromptKind.TEXT,
    text: body.kind === "text" ? body.text : "",
    messages: body.kind === "chat" ? body.messages.map(chatMessage) : [],
    modelConfig: prompt.modelConfig,
    resolved: used.map(
      (u): ResolvedPrompt => ({
        $typeName: "autoforge.prompt.v1.ResolvedPrompt",
        promptId: u.promptId,
        name: u.name,
        version: u.version,
        label: u.label ?? "",
      }),
    ),
    stale,
  };
}
