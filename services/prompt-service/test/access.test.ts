import { AdminService } from "@autoforge/contracts/admin/v1";
import { PromptService } from "@autoforge/contracts/prompt/v1";
import { describeAccess } from "@autoforge/server";
import { describe, expect, it } from "vitest";
import { documentedAccess } from "../../../test/support/documented-access.js";
import { promptServiceAccess } from "../src/access.js";

/** What the label handlers check on top of the declared access (docs/projects.md, after the table). */
const labelRules: Record<string, string> = {
  SetPromptLabel: " (publisher for a protected label, only the promotion gate for a gated label)",
  RemovePromptLabel: " (publisher for a protected label, nobody for a gated label)",
};

describe("access", () => {
  it("every PromptService RPC declares what it needs, and docs/projects.md says the same", () => {
    const declared = promptServiceAccess.methods as Record<string, Parameters<typeof describeAccess>[0]>;
    const documented = documentedAccess();
    for (const method of PromptService.methods) {
      const needs = declared[method.localName];
      expect(needs, `${method.name} has no access declaration`).toBeDefined();
      const words = describeAccess(needs as Parameters<typeof describeAccess>[0]);
      const row = documented.get(`PromptService.${method.name}`);
      // the label handlers add the project's protected and gated labels on top of the declared role
      const expected = `${words}${labelRules[method.name] ?? ""}`;
      expect(row, `docs/projects.md: PromptService.${method.name}`).toBe(expected);
    }
    expect(Object.keys(declared).sort()).toEqual(PromptService.methods.map((m) => m.localName).sort());
    expect(documented.get("AdminService.*")).toBe("operator role: admin");
    expect(AdminService.methods.length).toBeGreaterThan(0);
  });
});
