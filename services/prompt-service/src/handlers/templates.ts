import {
  type CreatePromptTemplateRequest,
  CreatePromptTemplateResponseSchema,
  type GetPromptTemplateRequest,
  type ListPromptTemplatesRequest,
  type PromptService,
  type RenderPromptTemplateRequest,
} from "@autoforge/contracts/prompt/v1";
import {
  decodePageToken,
  filterDigest,
  keysetPage,
  requestDigest,
  resolvePageSize,
  type ServiceHandlers,
} from "@autoforge/server";
import { create } from "@bufbuild/protobuf";
import { declarationFromProto, templateMessage, valueToInput } from "../convert.js";
import {
  findTemplate,
  findTemplateByName,
  insertTemplate,
  listTemplatesQuery,
  requestIds,
} from "../db/repository.js";
import type { PromptTemplateRow } from "../db/schema.js";
import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from "../domain/errors.js";
import {
  type InputValue,
  renderTemplate,
  type VariableDeclaration,
  validateTemplate,
} from "../domain/templates.js";
import { type Ctx, type HandlerDeps, newId, type PromptTx } from "./common.js";

type H = ServiceHandlers<typeof PromptService, PromptTx>;

export function createTemplateHandlers(_deps: HandlerDeps) {
  const createPromptTemplate: H["createPromptTemplate"] = async (
    req: CreatePromptTemplateRequest,
    ctx: Ctx,
  ) => {
    const owner = ctx.principal.subject;
    const declarations: VariableDeclaration[] = req.variables.map((v, i) => {
      const d = declarationFromProto(v, i);
      if ("field" in d) throw new InvalidArgumentError(d.field, d.reason);
      return d;
    });
    validateTemplate(req.body, declarations);
    const digest = requestDigest({
      name: req.name,
      description: req.description,
      body: req.body,
      variables: declarations,
    });
    const requestId = {
      ownerId: owner,
      method: "CreatePromptTemplate",
      requestId: req.requestId,
      digest,
      responseSchema: CreatePromptTemplateResponseSchema,
    };
    return ctx.unitOfWork(async (tx, { audit }) => {
      const earlier = await requestIds.replay(tx, requestId);
      if (earlier !== undefined) return earlier;
      if ((await findTemplateByName(tx, owner, req.name)) !== undefined) {
        throw new AlreadyExistsError(`name: you already have a template named ${req.name}`);
      }
      const { id, createdAt } = newId();
      const row: PromptTemplateRow = {
        id,
        ownerId: owner,
        name: req.name,
        description: req.description,
        body: req.body,
        variables: JSON.stringify(declarations),
        createdAt,
        updatedAt: createdAt,
      };
      await insertTemplate(tx, row);
      await audit({
        action: "template.create",
        resourceType: "prompt_template",
        resourceId: id,
        after: { id, ownerId: owner, name: row.name, description: row.description, variables: declarations },
      });
      const response = create(CreatePromptTemplateResponseSchema, { template: templateMessage(row) });
      await requestIds.remember(tx, requestId, response, createdAt);
      return response;
    });
  };

  const getPromptTemplate: H["getPromptTemplate"] = async (req: GetPromptTemplateRequest, ctx: Ctx) => {
    const owner = ctx.principal.subject;
    return ctx.unitOfWork(async (tx) => {
      const row = await findTemplate(tx, owner, req.id);
      if (row === undefined) throw new NotFoundError(`template ${req.id} not found`);
      return { template: templateMessage(row) };
    });
  };

  const listPromptTemplates: H["listPromptTemplates"] = async (req: ListPromptTemplatesRequest, ctx: Ctx) => {
    const owner = ctx.principal.subject;
    const pageSize = resolvePageSize(req.pageSize);
    const digest = filterDigest("ListPromptTemplates", { owner });
    const key = decodePageToken(req.pageToken, digest, ["number", "string"]);
    return ctx.unitOfWork(async (tx) => {
      const after = key === undefined ? undefined : { createdAt: key[0] as number, id: key[1] as string };
      const rows = await listTemplatesQuery(tx, owner, after, pageSize + 1);
      const { page, nextPageToken } = keysetPage(rows, pageSize, digest, (last) => [last.createdAt, last.id]);
      return { templates: page.map(templateMessage), nextPageToken };
    });
  };

  const renderPromptTemplate: H["renderPromptTemplate"] = async (
    req: RenderPromptTemplateRequest,
    ctx: Ctx,
  ) => {
    const owner = ctx.principal.subject;
    const input: Record<string, InputValue> = {};
    for (const [name, value] of Object.entries(req.variables)) {
      const v = valueToInput(value);
      if (v === undefined) throw new InvalidArgumentError(`variables.${name}`, "has no value");
      input[name] = v;
    }
    const row = await ctx.unitOfWork(async (tx) =>
      req.id !== "" ? findTemplate(tx, owner, req.id) : findTemplateByName(tx, owner, req.name),
    );
    if (row === undefined) throw new NotFoundError(`template ${req.id !== "" ? req.id : req.name} not found`);
    const declarations = JSON.parse(row.variables) as VariableDeclaration[];
    return { text: renderTemplate(row.body, declarations, input) };
  };

  return { createPromptTemplate, getPromptTemplate, listPromptTemplates, renderPromptTemplate };
}
