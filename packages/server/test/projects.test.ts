import { Code } from "@connectrpc/connect";
import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import {
  type Access,
  access,
  createAuthenticator,
  type ProjectMembership,
  RpcError,
  resolveProjectScope,
} from "../src/index.js";
import { secret, signer } from "./helpers.js";

function outcome(member: ProjectMembership, project: string, needs: Access): string {
  try {
    if (needs.kind === "operator") throw new Error("not a project access");
    const scope = resolveProjectScope(member, project, needs, "M");
    return `${scope.id}:${scope.role}`;
  } catch (e) {
    if (e instanceof RpcError) return Code[e.code];
    throw e;
  }
}

const member = (projects: Record<string, "viewer" | "editor" | "publisher" | "admin">, roles = ["user"]) => ({
  subject: "ada",
  roles,
  projects: new Map(Object.entries(projects)),
  serviceProject: undefined,
});
const service = (serviceProject: string): ProjectMembership => ({
  subject: "svc",
  roles: ["service"],
  projects: new Map(),
  serviceProject,
});

describe("resolveProjectScope", () => {
  it("a member acts with its role; roles include the ones before them", () => {
    const m = member({ acme: "publisher" });
    expect(outcome(m, "acme", access.viewer())).toBe("acme:publisher");
    expect(outcome(m, "acme", access.editor())).toBe("acme:publisher");
    expect(outcome(m, "acme", access.publisher())).toBe("acme:publisher");
    expect(outcome(m, "acme", access.admin())).toBe("PermissionDenied");
    expect(outcome(member({ acme: "viewer" }), "acme", access.editor())).toBe("PermissionDenied");
  });

  it("a project the caller is no member of is NOT_FOUND, whatever the role needed", () => {
    const m = member({ acme: "admin" });
    for (const needs of [access.viewer(), access.admin(), access.feed()]) {
      expect(outcome(m, "other", needs)).toBe("NotFound");
      expect(outcome(m, "user:bob", needs)).toBe("NotFound");
    }
  });

  it("the personal project: `user:{sub}` (the default), with the role the roles claim gives", () => {
    expect(outcome(member({}), "", access.editor())).toBe("user:ada:editor");
    expect(outcome(member({}), "user:ada", access.editor())).toBe("user:ada:editor");
    expect(outcome(member({}), "", access.publisher())).toBe("PermissionDenied");
    expect(outcome(member({}, ["user", "publisher"]), "", access.publisher())).toBe("user:ada:publisher");
    expect(outcome(member({}, ["admin"]), "", access.admin())).toBe("user:ada:admin");
    // a personal project's owner may purge (`personal: "editor"`), a team editor may not
    expect(outcome(member({}), "", access.admin({ personal: "editor" }))).toBe("user:ada:editor");
    expect(outcome(member({ acme: "editor" }), "acme", access.admin({ personal: "editor" }))).toBe(
      "PermissionDenied",
    );
    // members are no service principals: the feed is refused
    expect(outcome(member({}), "", access.feed())).toBe("PermissionDenied");
  });

  it("service principals read their one project (and its feed); the all-projects principal reads feeds only", () => {
    const s = service("acme");
    expect(outcome(s, "", access.viewer({ service: true }))).toBe("acme:service");
    expect(outcome(s, "acme", access.feed())).toBe("acme:service");
    expect(outcome(s, "acme", access.viewer())).toBe("PermissionDenied");
    expect(outcome(s, "acme", access.editor())).toBe("PermissionDenied");
    expect(outcome(s, "other", access.viewer({ service: true }))).toBe("NotFound");
    expect(outcome(s, "other", access.feed())).toBe("NotFound");
    const all = service("*");
    expect(outcome(all, "", access.feed())).toBe("*:service");
    expect(outcome(all, "acme", access.feed())).toBe("acme:service");
    expect(outcome(all, "", access.viewer({ service: true }))).toBe("PermissionDenied");
    expect(outcome(all, "acme", access.editor())).toBe("PermissionDenied");
  });
});

describe("project claims", () => {
  const authenticate = createAuthenticator({ secret });
  const key = new TextEncoder().encode(secret);
  const raw = (claims: Record<string, unknown>, sub = "ada") =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: "HS256" })
      .setSubject(sub)
      .setExpirationTime("1h")
      .sign(key);
  const refused = async (token: Promise<string>) => {
    await expect(authenticate(`Bearer ${await token}`)).rejects.toMatchObject({ code: Code.Unauthenticated });
  };

  it("reads projects, a service's project and the all-projects claim", async () => {
    const m = await authenticate(
      `Bearer ${await signer.signToken({ sub: "ada", projects: { acme: "editor" } })}`,
    );
    expect([...m.projects]).toEqual([["acme", "editor"]]);
    expect(m.serviceProject).toBeUndefined();
    const s = await authenticate(
      `Bearer ${await signer.signToken({ sub: "app", roles: ["service"], project: "acme" })}`,
    );
    expect(s.serviceProject).toBe("acme");
    const all = await authenticate(
      `Bearer ${await signer.signToken({ sub: "evaluation-service", roles: ["service"], projects: "*" })}`,
    );
    expect(all.serviceProject).toBe("*");
  });

  it("refuses malformed claims and an all-projects token of any other subject", async () => {
    await refused(raw({ projects: { acme: "owner" } }));
    await refused(raw({ projects: { "Not A Project": "viewer" } }));
    await refused(raw({ projects: { "user:bob": "admin" } }));
    await refused(raw({ projects: ["acme"] }));
    await refused(raw({ roles: ["service"], projects: "*" }, "mallory"));
    await refused(raw({ roles: ["user"], projects: "*" }, "evaluation-service"));
    await refused(raw({ roles: ["user"], project: "acme" }));
    await refused(raw({ roles: ["service"], project: "acme", projects: { acme: "viewer" } }));
    const allowed = createAuthenticator({ secret, allProjectsSubjects: ["gate"] });
    const gate = await allowed(`Bearer ${await raw({ roles: ["service"], projects: "*" }, "gate")}`);
    expect(gate.serviceProject).toBe("*");
  });
});
