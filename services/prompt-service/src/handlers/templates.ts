import {
  type CreatePromptTemplateRequest,
  CreatePromptTemplateResponseSchema,
  type GetPromptTemplateRequest,
  type ListPromptTemplatesRequest,
  type PromptService,
  PromptTemplateSchema,
  type RenderPromptTemplateRequest,
} from "@autoforge/contracts/prompt/v1";
import {
  cappedKeysetPage,
  decodePageToken,
  encodedItemSize,
  filterDigest,
  listView,
  requestDigest,
  resolvePageSize,
  type ServiceHandlers,
} from "@autoforge/server";
import { create } from "@bufbuild/protobuf";
import { templateMessage, variableInputs } from "../convert.js";
import {
  findTemplate,
  findTemplateByName,
  insertTemplate,
  listTemplatesQuery,
  requestIds,
} from "../db/repository.js";
import type { PromptTemplateRow } from "../db/schema.js";
import { nameTaken, templateNotFound } from "../domain/errors.js";
import { renderTemplate, type VariableDeclaration, validateTemplate } from "../domain/templates.js";
import {
  type Ctx,
  type HandlerDeps,
  newId,
  type PromptTx,
  requestDeclarations,
  requestIdOwner,
} from "./common.js";

type H = ServiceHandlers<typeof PromptService, PromptTx>;

const templateSize = encodedItemSize(PromptTemplateSchema);

export function createTemplateHandlers(_deps: HandlerDeps) {
  const createPromptTemplate: H["createPromptTemplate"] = async (
    req: CreatePromptTemplateRequest,
    ctx: Ctx,
  ) => {
    const project = ctx.project.id;
    const actor = ctx.principal.subject;
    const declarations = requestDeclarations(req.variables);
    validateTemplate(req.body, declarations);
    const digest = requestDigest({
      name: req.name,
      description: req.description,
      body: req.body,
      variables: declarations,
    });
    const requestId = {
      ownerId: requestIdOwner(ctx),
      method: "CreatePromptTemplate",
      requestId: req.requestId,
      digest,
      responseSchema: CreatePromptTemplateResponseSchema,
    };
    return ctx.unitOfWork(async (tx, { audit }) => {
      const earlier = await requestIds.replay(tx, requestId);
      if (earlier !== undefined) return earlier;
      if ((await findTemplateByName(tx, project, req.name)) !== undefined) {
        throw nameTaken("template", req.name, project);
      }
      const { id, createdAt } = newId();
      const row: PromptTemplateRow = {
        id,
        projectId: project,
        ownerId: actor,
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
        after: {
          id,
          projectId: project,
          ownerId: actor,
          name: row.name,
          description: row.description,
          variables: declarations,
        },
      });
      const response = create(CreatePromptTemplateResponseSchema, { template: templateMessage(row) });
      await requestIds.remember(tx, requestId, response, createdAt);
      return response;
    });
  };

  const getPromptTemplate: H["getPromptTemplate"] = async (req: GetPromptTemplateRequest, ctx: Ctx) => {
    return ctx.unitOfWork(async (tx) => {
      const row = await findTemplate(tx, ctx.project.id, req.id);
      if (row === undefined) throw templateNotFound(req.id);
      return { template: templateMessage(row) };
    });
  };

  const listPromptTemplates: H["listPromptTemplates"] = async (req: ListPromptTemplatesRequest, ctx: Ctx) => {
    const project = ctx.project.id;
    const pageSize = resolvePageSize(req.pageSize);
    const digest = filterDigest("ListPromptTemplates", { project });
    const key = decodePageToken(req.pageToken, digest, ["number", "string"]);
    const view = listView(req.view);
    return ctx.unitOfWork(async (tx) => {
      const after = key === undefined ? undefined : { createdAt: key[0] as number, id: key[1] as string };
      const rows = await listTemplatesQuery(tx, project, after, pageSize + 1);
      const { page, nextPageToken } = cappedKeysetPage(rows, {
        pageSize,
        digest,
        keyOf: (r) => [r.createdAt, r.id],
        toItem: (r) => create(PromptTemplateSchema, templateMessage(r, view)),
        sizeOf: templateSize,
      });
      return { templates: page, nextPageToken };
    });
  };

  const renderPromptTemplate: H["renderPromptTemplate"] = async (
    req: RenderPromptTemplateRequest,
    ctx: Ctx,
  ) => {
    const project = ctx.project.id;
    const input = variableInputs(req.variables);
    const row = await ctx.unitOfWork(async (tx) =>
      req.id !== "" ? findTemplate(tx, project, req.id) : findTemplateByName(tx, project, req.name),
    );
    if (row === undefined) {
      const resourceName = req.id !== "" ? req.id : `${project}/${req.name}`;
      throw templateNotFound(req.id !== "" ? req.id : req.name, { resourceName });
    }
    const declarations = JSON.parse(row.variables) as VariableDeclaration[];
    return { text: renderTemplate(row.body, declarations, input) };
  };

  return { createPromptTemplate, getPromptTemplate, listPromptTemplates, renderPromptTemplate };
}
