import { BadRequestSchema, ErrorInfoSchema } from "@autoforge/contracts/google/rpc/error_details";
import { auditDigest } from "@autoforge/db";
import type { Role } from "@autoforge/server";
import type { ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import {
  Code,
  expectCode,
  must,
  type ProjectClaims,
  type PromptClient,
  type PromptServiceHarness,
  startPromptService,
  tableCounts,
} from "./helpers.js";

/**
 * Gated labels (docs/projects.md): per project, labels only the promotion gate moves — evaluation-service's
 * PromotionService.PromotePromptVersion, calling SetPromptLabel as its own service principal (a subject of
 * PROMOTION_GATE_SUBJECTS). Everyone else's SetPromptLabel on one is LABEL_GATED; nobody removes one.
 */

const project = "acme";
const gatedMessage =
  "label production of project acme is gated: promote a version with PromotionService.PromotePromptVersion (evaluation-service)";

/** evaluation-service's SERVICE_TOKEN: the all-projects service principal. */
const gateClaims = { projects: "*" } satisfies ProjectClaims;

function errorInfo(e: ConnectError) {
  return e.findDetails(ErrorInfoSchema)[0];
}

function violatedFields(e: ConnectError): string[] {
  return e.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field));
}

type Protocol = "grpc" | "connect";

function clientOf(svc: PromptServiceHarness, protocol: Protocol) {
  return (sub: string, roles: Role[], claims: ProjectClaims = {}): Promise<PromptClient> =>
    protocol === "grpc" ? svc.client(sub, roles, claims) : svc.connectClient(sub, roles, claims);
}

/**
 * Project acme with a prompt of 3 versions, `production` and `staging` at 1; its admin then gates
 * `production` (it stays protected, the default).
 */
async function gatedProject(protocol: Protocol, options: { promotionGateSubjects?: readonly string[] } = {}) {
  const svc = await startPromptService(options);
  const client = clientOf(svc, protocol);
  const admin = await client("ada", ["user"], { projects: { [project]: "admin" } });
  const publisher = await client("pat", ["user"], { projects: { [project]: "publisher" } });
  const gate = await client("evaluation-service", ["service"], gateClaims);
  let p = must((await admin.createPrompt({ project, name: "checkout", title: "t", content: "v1" })).prompt);
  for (const content of ["v2", "v3"]) {
    p = must(
      (
        await admin.updatePrompt({
          project,
          id: p.id,
          etag: p.etag,
          updateMask: { paths: ["content"] },
          content,
        })
      ).prompt,
    );
  }
  await admin.setPromptLabel({ project, id: p.id, label: "production", version: 1 });
  await admin.setPromptLabel({ project, id: p.id, label: "staging", version: 1 });
  const updated = await admin.updateProjectSettings({
    project,
    updateMask: { paths: ["gated_labels"] },
    gatedLabels: ["production"],
  });
  expect(updated.settings).toMatchObject({ protectedLabels: ["production"], gatedLabels: ["production"] });
  const labels = async () => must((await admin.getPrompt({ project, id: p.id })).prompt).labels;
  return { svc, client, admin, publisher, gate, id: p.id, labels };
}

describe.each(["grpc", "connect"] as const)("gated labels over %s", (protocol) => {
  it("nobody but the gate moves a gated label (LABEL_GATED), nobody removes one, and it does not move", async () => {
    const { svc, admin, publisher, gate, id, labels } = await gatedProject(protocol);
    expect((await publisher.getProjectSettings({ project })).settings?.gatedLabels).toEqual(["production"]);
    const before = await tableCounts(svc.db);

    const denied = await expectCode(
      publisher.setPromptLabel({ project, id, label: "production", version: 2 }),
      Code.PermissionDenied,
    );
    expect(denied.rawMessage).toBe(gatedMessage);
    expect(errorInfo(denied)).toMatchObject({
      reason: "LABEL_GATED",
      metadata: { label: "production", project },
    });
    // a project admin too, with or without expected_version
    const byAdmin = await expectCode(
      admin.setPromptLabel({ project, id, label: "production", version: 2, expectedVersion: 1 }),
      Code.PermissionDenied,
      gatedMessage,
    );
    expect(errorInfo(byAdmin)?.reason).toBe("LABEL_GATED");

    // removing it: refused for the admin, the publisher and the gate itself
    const removed = await expectCode(
      admin.removePromptLabel({ project, id, label: "production" }),
      Code.PermissionDenied,
      /^label production of project acme is gated: it cannot be removed/,
    );
    expect(errorInfo(removed)).toMatchObject({
      reason: "LABEL_GATED",
      metadata: { label: "production", project },
    });
    await expectCode(
      publisher.removePromptLabel({ project, id, label: "production" }),
      Code.PermissionDenied,
    );
    await expectCode(gate.removePromptLabel({ project, id, label: "production" }), Code.PermissionDenied);

    expect(await labels()).toEqual({ production: 1, staging: 1, latest: 3 });
    expect(await tableCounts(svc.db)).toEqual(before);

    // the project's other labels behave as before
    await publisher.setPromptLabel({ project, id, label: "staging", version: 2 });
    await publisher.removePromptLabel({ project, id, label: "staging" });
    expect(await labels()).toEqual({ production: 1, latest: 3 });
  });

  it("the gate moves a gated label with expected_version, and nothing else; other service principals nothing", async () => {
    const { svc, client, admin, gate, id, labels } = await gatedProject(protocol);

    const moved = await gate.setPromptLabel({
      project,
      id,
      label: "production",
      version: 2,
      expectedVersion: 1,
      reason: "experiment e1 passed",
    });
    expect(moved.prompt?.labels).toMatchObject({ production: 2 });
    const history = await admin.listPromptLabelHistory({ project, promptId: id, label: "production" });
    expect(history.moves[0]).toMatchObject({
      fromVersion: 1,
      toVersion: 2,
      actor: "evaluation-service",
      reason: "experiment e1 passed",
    });

    // a compare-and-swap that lost: ABORTED, nothing moves
    const lost = await expectCode(
      gate.setPromptLabel({ project, id, label: "production", version: 3, expectedVersion: 1 }),
      Code.Aborted,
      /points to version 2, expected at version 1/,
    );
    expect(errorInfo(lost)?.reason).toBe("LABEL_MOVED");
    // every other check still holds for the gate
    await expectCode(
      gate.setPromptLabel({ project, id, label: "production", version: 9, expectedVersion: 2 }),
      Code.NotFound,
    );
    await expectCode(
      gate.setPromptLabel({
        project,
        id: "01900000-0000-7000-8000-000000000000",
        label: "production",
        version: 1,
      }),
      Code.NotFound,
    );
    expect(await labels()).toEqual({ production: 2, staging: 1, latest: 3 });

    // the gate on labels that are not gated: refused like any service principal
    const before = await tableCounts(svc.db);
    await expectCode(
      gate.setPromptLabel({ project, id, label: "staging", version: 2 }),
      Code.PermissionDenied,
      /not open to service principals/,
    );
    await expectCode(
      gate.setPromptLabel({ project, id, label: "canary", version: 2 }),
      Code.PermissionDenied,
    );
    // other service principals of the project: refused on the gated label and on every other
    const other = await client("svc-a", ["service"], { project });
    const otherDenied = await expectCode(
      other.setPromptLabel({ project, id, label: "production", version: 3 }),
      Code.PermissionDenied,
      gatedMessage,
    );
    expect(errorInfo(otherDenied)?.reason).toBe("LABEL_GATED");
    await expectCode(
      other.setPromptLabel({ project, id, label: "staging", version: 3 }),
      Code.PermissionDenied,
      "SetPromptLabel is not open to service principals",
    );
    // a person whose subject is the gate's is no service principal: no gate either
    const impostor = await client("evaluation-service", ["user"], { projects: { [project]: "admin" } });
    await expectCode(
      impostor.setPromptLabel({ project, id, label: "production", version: 3 }),
      Code.PermissionDenied,
      gatedMessage,
    );
    expect(await labels()).toEqual({ production: 2, staging: 1, latest: 3 });
    expect(await tableCounts(svc.db)).toEqual(before);

    // the gate's subject with a token of this one project is the gate too
    const ownProject = await client("evaluation-service", ["service"], { project });
    await ownProject.setPromptLabel({ project, id, label: "production", version: 3, expectedVersion: 2 });
    expect(await labels()).toEqual({ production: 3, staging: 1, latest: 3 });
    // ungated again, the label is back to a protected label: the gate cannot move it, a publisher can
    await admin.updateProjectSettings({ project, updateMask: { paths: ["gatedLabels"] }, gatedLabels: [] });
    await expectCode(
      gate.setPromptLabel({ project, id, label: "production", version: 1 }),
      Code.PermissionDenied,
    );
    await admin.removePromptLabel({ project, id, label: "production", expectedVersion: 3 });
    expect(await labels()).toEqual({ staging: 1, latest: 3 });
  });

  it("with PROMOTION_GATE_SUBJECTS naming another subject, evaluation-service's token is refused", async () => {
    const { client, gate, id, labels } = await gatedProject(protocol, {
      promotionGateSubjects: ["release-gate"],
    });
    const denied = await expectCode(
      gate.setPromptLabel({ project, id, label: "production", version: 2, expectedVersion: 1 }),
      Code.PermissionDenied,
      gatedMessage,
    );
    expect(errorInfo(denied)?.reason).toBe("LABEL_GATED");
    const releaseGate = await client("release-gate", ["service"], { project });
    await releaseGate.setPromptLabel({ project, id, label: "production", version: 2, expectedVersion: 1 });
    expect(await labels()).toEqual({ production: 2, staging: 1, latest: 3 });
  });

  it("settings: gated_labels shown, validated like protected labels, kept by a mask without it, audited", async () => {
    const svc = await startPromptService();
    const admin = await clientOf(svc, protocol)("ada", ["user"], { projects: { [project]: "admin" } });
    expect((await admin.getProjectSettings({ project })).settings).toMatchObject({
      protectedLabels: ["production"],
      gatedLabels: [],
    });

    const bad = await expectCode(
      admin.updateProjectSettings({
        project,
        updateMask: { paths: ["gated_labels"] },
        gatedLabels: ["ok", "Prod", "latest", "x".repeat(37)],
      }),
      Code.InvalidArgument,
    );
    expect(violatedFields(bad)).toEqual(["gated_labels[1]", "gated_labels[2]", "gated_labels[3]"]);
    const tooMany = await expectCode(
      admin.updateProjectSettings({
        project,
        updateMask: { paths: ["gated_labels"] },
        gatedLabels: Array.from({ length: 21 }, (_, i) => `l${i}`),
      }),
      Code.InvalidArgument,
    );
    expect(violatedFields(tooMany)).toEqual(["gated_labels"]);
    await expectCode(
      admin.updateProjectSettings({ project, updateMask: { paths: ["gated"] }, gatedLabels: ["production"] }),
      Code.InvalidArgument,
      /allowed: protected_labels, gated_labels/,
    );
    expect((await admin.getProjectSettings({ project })).settings?.gatedLabels).toEqual([]);

    const both = await admin.updateProjectSettings({
      project,
      updateMask: { paths: ["gatedLabels", "protected_labels"] },
      gatedLabels: ["production", "canary", "production"],
      protectedLabels: ["production", "prod-eu"],
    });
    expect(both.settings).toMatchObject({
      protectedLabels: ["prod-eu", "production"],
      gatedLabels: ["canary", "production"],
    });
    // a mask without gated_labels keeps them, and the other way round
    await admin.updateProjectSettings({
      project,
      updateMask: { paths: ["protected_labels"] },
      protectedLabels: ["prod-eu"],
    });
    await admin.updateProjectSettings({
      project,
      updateMask: { paths: ["gated_labels"] },
      gatedLabels: ["production"],
    });
    expect((await admin.getProjectSettings({ project })).settings).toMatchObject({
      protectedLabels: ["prod-eu"],
      gatedLabels: ["production"],
    });

    // each change's audit row covers both lists, before and after
    const { events } = await svc.admin.listAuditEvents({ resourceType: "project", resourceId: project });
    expect(events.map((e) => [e.action, e.digest])).toEqual([
      [
        "project.settings.update",
        auditDigest(
          { protectedLabels: ["production"], gatedLabels: [] },
          { protectedLabels: ["prod-eu", "production"], gatedLabels: ["canary", "production"] },
        ),
      ],
      [
        "project.settings.update",
        auditDigest(
          { protectedLabels: ["prod-eu", "production"], gatedLabels: ["canary", "production"] },
          { protectedLabels: ["prod-eu"], gatedLabels: ["canary", "production"] },
        ),
      ],
      [
        "project.settings.update",
        auditDigest(
          { protectedLabels: ["prod-eu"], gatedLabels: ["canary", "production"] },
          { protectedLabels: ["prod-eu"], gatedLabels: ["production"] },
        ),
      ],
    ]);
  });
});
