// Typed errors come from the server kit: its one error mapper turns them into status codes and error details.
import { PromptSchema, PromptTemplateSchema, PromptVersionSchema } from "@autoforge/contracts/prompt/v1";
import { AbortedError, AlreadyExistsError, FailedPreconditionError, NotFoundError } from "@autoforge/server";

export {
  AbortedError,
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
} from "@autoforge/server";

// The errors this service raises most, built in one place so the reasons, metadata and resource names
// (docs/errors.md) stay the same wherever they are thrown. `prompt` is an id, or a name in the project.

/** `field`: the request field that named it; `resourceName`: `project/name` when it was asked for by name. */
export interface NotFoundOptions {
  readonly field?: string;
  readonly resourceName?: string;
}

const fieldPrefix = (field: string | undefined) => (field === undefined ? "" : `${field}: `);

export function promptNotFound(prompt: string, options: NotFoundOptions = {}): NotFoundError {
  return new NotFoundError(
    `${fieldPrefix(options.field)}prompt ${prompt} not found`,
    { type: PromptSchema.typeName, name: options.resourceName ?? prompt },
    { reason: "PROMPT_NOT_FOUND", metadata: { prompt } },
  );
}

/** `version` is a number, or the label that was asked for. */
export function versionNotFound(prompt: string, version: number | string, field?: string): NotFoundError {
  return new NotFoundError(
    `${fieldPrefix(field)}version ${version} of prompt ${prompt} not found`,
    { type: PromptVersionSchema.typeName, name: `${prompt}@${version}` },
    { reason: "VERSION_NOT_FOUND", metadata: { prompt, version: String(version) } },
  );
}

export function labelNotFound(prompt: string, label: string): NotFoundError {
  return new NotFoundError(
    `label ${label} of prompt ${prompt} not found`,
    { type: PromptVersionSchema.typeName, name: `${prompt}@${label}` },
    { reason: "LABEL_NOT_FOUND", metadata: { prompt, label } },
  );
}

export function templateNotFound(template: string, options: NotFoundOptions = {}): NotFoundError {
  return new NotFoundError(
    `${fieldPrefix(options.field)}template ${template} not found`,
    { type: PromptTemplateSchema.typeName, name: options.resourceName ?? template },
    { reason: "TEMPLATE_NOT_FOUND", metadata: { template } },
  );
}

/** A soft-deleted prompt: restore it first. `action` completes "restore it before ...". */
export function promptDeleted(prompt: string, action: string): FailedPreconditionError {
  const description = `prompt ${prompt} is deleted: restore it before ${action}`;
  return new FailedPreconditionError(description, {
    reason: "PROMPT_DELETED",
    metadata: { prompt },
    preconditionViolations: [{ type: "STATE", subject: prompt, description }],
  });
}

export function staleEtag(prompt: string): AbortedError {
  const description = `etag of prompt ${prompt} is stale: read it again and retry`;
  return new AbortedError(description, {
    reason: "STALE_ETAG",
    metadata: { prompt },
    preconditionViolations: [{ type: "ETAG", subject: prompt, description }],
  });
}

/** Another write changed the prompt between this call's read and its write (its revision moved). */
export function concurrentChange(prompt: string): AbortedError {
  return new AbortedError(`prompt ${prompt} changed concurrently: read it again and retry`, {
    reason: "CONCURRENT_MODIFICATION",
    metadata: { prompt },
  });
}

/** A prompt or template name is unique in its project. `kind`: "prompt" or "template". */
export function nameTaken(kind: "prompt" | "template", name: string, project: string): AlreadyExistsError {
  return new AlreadyExistsError(`name: a ${kind} named ${name} already exists in project ${project}`, {
    reason: "NAME_TAKEN",
    metadata: { kind, name, project },
    resource: {
      type: kind === "prompt" ? PromptSchema.typeName : PromptTemplateSchema.typeName,
      name: `${project}/${name}`,
    },
  });
}
