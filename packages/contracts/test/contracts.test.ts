import { contractFiles } from "@autoforge/contracts";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";

// Rules of architecture §2 that clients rely on, checked on the descriptors themselves so that a
// new RPC cannot forget them.
const services: DescService[] = contractFiles.flatMap((file) => file.services);
const methods: DescMethod[] = services.flatMap((service) => service.methods);

describe("contracts", () => {
  it("has the five services", () => {
    expect(services.map((s) => s.typeName).sort()).toEqual([
      "autoforge.admin.v1.AdminService",
      "autoforge.evaluation.v1.DatasetService",
      "autoforge.evaluation.v1.EvaluationService",
      "autoforge.evaluation.v1.PromotionService",
      "autoforge.prompt.v1.PromptService",
    ]);
  });

  it("declares reads as NO_SIDE_EFFECTS", () => {
    const reads = methods.filter((m) => /^(Get|List|Watch|Diff|Render|Compare|Verify)/.test(m.name));
    expect(reads.length).toBeGreaterThan(10);
    for (const method of reads) {
      expect(method.idempotency, method.name).toBe(1 /* NO_SIDE_EFFECTS */);
    }
  });

  it("never marks a create as idempotent: it is retry-safe only with a request_id", () => {
    for (const method of methods.filter((m) => m.name.startsWith("Create"))) {
      expect(method.idempotency, method.name).toBe(0 /* IDEMPOTENCY_UNKNOWN */);
      expect(
        method.input.fields.map((f) => f.name),
        method.name,
      ).toContain("request_id");
    }
  });

  it("paginates every unary list with page_size, page_token and next_page_token", () => {
    const lists = methods.filter((m) => m.name.startsWith("List") && m.name !== "ListPromptEvents");
    expect(lists.length).toBe(11);
    for (const method of lists) {
      const input = method.input.fields.map((f) => f.name);
      expect(input, method.name).toEqual(expect.arrayContaining(["page_size", "page_token"]));
      expect(
        method.output.fields.map((f) => f.name),
        method.name,
      ).toContain("next_page_token");
    }
  });

  it("names the resource id on single-resource methods and the parent on child collections", () => {
    const byName = new Map(methods.map((m) => [m.name, m]));
    const takesId = [
      "GetPrompt",
      "UpdatePrompt",
      "DeletePrompt",
      "RestorePrompt",
      "PurgePrompt",
      "DiffPromptVersions",
      "SetPromptLabel",
      "GetEvaluation",
      "StartEvaluation",
      "CompleteEvaluation",
      "FailEvaluation",
      "GetEvaluationSummary",
      "GetDataset",
    ];
    for (const name of takesId) {
      expect(byName.get(name)?.input.fields[0]?.name, name).toBe("id");
    }
    for (const name of [
      "ListPromptVersions",
      "ListPromptLabelHistory",
      "CreateEvaluation",
      "ListEvaluations",
      "ComparePromptVersions",
    ]) {
      expect(
        byName.get(name)?.input.fields.map((f) => f.name),
        name,
      ).toContain("prompt_id");
    }
    for (const name of [
      "RecordTestResults",
      "StreamTestResults",
      "ListTestResults",
      "ExportTestResults",
      "ListItemStats",
    ]) {
      expect(byName.get(name)?.input.fields[0]?.name, name).toBe("evaluation_id");
    }
    for (const name of ["CreateDatasetVersion", "ListDatasetItems", "DiffDatasetVersions"]) {
      expect(byName.get(name)?.input.fields[0]?.name, name).toBe("dataset_id");
    }
  });

  it("names the project on every request of the project-scoped services (a string field `project`)", () => {
    const scoped = services.filter((s) => s.typeName !== "autoforge.admin.v1.AdminService");
    expect(scoped).toHaveLength(4);
    for (const method of scoped.flatMap((s) => s.methods)) {
      const field = method.input.fields.find((f) => f.name === "project");
      expect(field?.fieldKind, method.name).toBe("scalar");
      expect(field?.fieldKind === "scalar" && field.scalar, method.name).toBe(9 /* STRING */);
    }
  });

  it("gives every enum an _UNSPECIFIED zero value", () => {
    for (const file of contractFiles) {
      for (const enumDesc of file.enums) {
        expect(enumDesc.values[0]?.name, enumDesc.typeName).toMatch(/_UNSPECIFIED$/);
        expect(enumDesc.values[0]?.number).toBe(0);
      }
    }
  });
});
