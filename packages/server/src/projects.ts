import type { Role } from "./context.js";
import { NotFoundError, PermissionDeniedError } from "./errors.js";

/**
 * Projects are the tenancy boundary: every resource belongs to one. Membership comes from the verified token
 * (the identity provider is the source of truth; no service stores users). docs/projects.md is the user's
 * view of these rules.
 */

/** Roles in a project, each including the ones before it. */
export const projectRoles = ["viewer", "editor", "publisher", "admin"] as const;
export type ProjectRole = (typeof projectRoles)[number];

/** Team project ids (the keys of a token's `projects` claim). Personal projects are `user:{sub}`. */
export const teamProjectPattern = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** The value of a `projects` claim that makes a service principal of every project. */
export const allProjects = "*";

export function personalProject(subject: string): string {
  return `user:${subject}`;
}

export function isProjectRole(value: unknown): value is ProjectRole {
  return typeof value === "string" && (projectRoles as readonly string[]).includes(value);
}

function rank(role: ProjectRole): number {
  return projectRoles.indexOf(role);
}

/** Whether `role` includes `needed`. */
export function hasProjectRole(role: ProjectRole, needed: ProjectRole): boolean {
  return rank(role) >= rank(needed);
}

/** What a method needs of its caller. Every method of every service declares one (`defineService` checks). */
export type Access =
  /**
   * A role in the project the request names. `service`: a service principal of that project may call it too
   * (the reads of the registry). `personal`: the role needed in a personal project instead, when it differs
   * (the owner of a personal project may purge, as before projects existed).
   */
  | {
      readonly kind: "project";
      readonly role: ProjectRole;
      readonly service: boolean;
      readonly personal: ProjectRole | undefined;
    }
  /** A service principal of the project named, or the all-projects principal (change feeds). */
  | { readonly kind: "feed" }
  /** One of these global roles of the token's `roles` claim: operators of a service's database (AdminService). */
  | { readonly kind: "operator"; readonly roles: readonly Role[] };

function projectAccess(role: ProjectRole) {
  return (options: { service?: boolean; personal?: ProjectRole } = {}): Access => ({
    kind: "project",
    role,
    service: options.service ?? false,
    personal: options.personal,
  });
}

/** Shorthands for access declarations: `access.viewer({ service: true })`, `access.editor()`, ... */
export const access = {
  viewer: projectAccess("viewer"),
  editor: projectAccess("editor"),
  publisher: projectAccess("publisher"),
  admin: projectAccess("admin"),
  feed: (): Access => ({ kind: "feed" }),
  operator: (...roles: Role[]): Access => ({
    kind: "operator",
    roles: roles.length === 0 ? ["admin"] : roles,
  }),
} as const;

/** How a call's principal relates to projects (from its token). */
export interface ProjectMembership {
  readonly subject: string;
  /** The `roles` claim: the role in the personal project, and operator roles. */
  readonly roles: readonly string[];
  /** Team projects and the caller's role in each (the `projects` claim). */
  readonly projects: ReadonlyMap<string, ProjectRole>;
  /** Service principals: the one project served, or `*` for every project. */
  readonly serviceProject: string | undefined;
}

/** The project a call acts in, resolved by the chain before any handler runs. */
export interface ProjectScope {
  /** The project id; `*` only for the all-projects principal on a feed without a project named. */
  readonly id: string;
  /** The caller's role there; `service` for service principals. */
  readonly role: ProjectRole | "service";
  readonly personal: boolean;
}

/** The role a personal project gives, from the `roles` claim (the first release's roles, unchanged in effect). */
function personalRole(roles: readonly string[]): ProjectRole | "service" | undefined {
  if (roles.includes("admin")) return "admin";
  if (roles.includes("publisher")) return "publisher";
  if (roles.includes("user")) return "editor";
  if (roles.includes("service")) return "service";
  return undefined;
}

function shown(project: string): string {
  return project.length > 100 ? `${project.slice(0, 100)}...` : project;
}

/**
 * The project a call acts in and the caller's role there, or the refusal: a project the caller is no member
 * of answers NOT_FOUND (existence is never revealed), a member without the role PERMISSION_DENIED.
 * `requested` is the request's `project` field ("" = the caller's default project).
 */
export function resolveProjectScope(
  member: ProjectMembership,
  requested: string,
  needs: Exclude<Access, { kind: "operator" }>,
  method: string,
): ProjectScope {
  const notFound = (id: string) =>
    new NotFoundError(
      `project ${shown(id)} not found`,
      { type: "project", name: id },
      { reason: "PROJECT_NOT_FOUND", metadata: { project: id } },
    );
  if (member.serviceProject !== undefined) {
    const id = requested === "" ? member.serviceProject : requested;
    if (member.serviceProject !== allProjects && id !== member.serviceProject) throw notFound(id);
    if (needs.kind === "feed" || (needs.service && id !== allProjects)) {
      return { id, role: "service", personal: false };
    }
    if (needs.service) {
      throw new PermissionDeniedError(
        `${method}: name the project (the all-projects principal reads feeds only)`,
      );
    }
    throw new PermissionDeniedError(`${method} is not open to service principals`);
  }
  const own = personalProject(member.subject);
  const id = requested === "" ? own : requested;
  const personal = id === own;
  const role = personal ? personalRole(member.roles) : member.projects.get(id);
  if (role === undefined) {
    if (personal)
      throw new PermissionDeniedError(`${method}: the token's roles give no role in ${shown(id)}`);
    throw notFound(id);
  }
  if (needs.kind === "feed") {
    if (role === "service") return { id, role, personal };
    throw new PermissionDeniedError(`${method} requires a service principal`);
  }
  if (role === "service") {
    if (needs.service) return { id, role, personal };
    throw new PermissionDeniedError(`${method} is not open to service principals`);
  }
  const needed = (personal ? needs.personal : undefined) ?? needs.role;
  if (!hasProjectRole(role, needed)) {
    throw new PermissionDeniedError(`${method} requires the ${needed} role in project ${shown(id)}`);
  }
  return { id, role, personal };
}

/** One access declaration in words, as docs/projects.md's role table shows it (a test keeps the two equal). */
export function describeAccess(needs: Access): string {
  switch (needs.kind) {
    case "feed":
      return "service principal (feed)";
    case "operator":
      return `operator role: ${needs.roles.join(" or ")}`;
    case "project": {
      const parts: string[] = [needs.role];
      if (needs.service) parts.push("or service principal");
      if (needs.personal !== undefined) parts.push(`(${needs.personal} in a personal project)`);
      return parts.join(" ");
    }
  }
}

/**
 * Whose AIP-155 request ids a create is checked against: the caller's, within the project, so two members of
 * one project never replay each other's responses. A personal project keeps the bare subject, so keys stored
 * before projects existed still replay. (Team project ids contain no space.)
 */
export function requestIdOwner(subject: string, project: ProjectScope): string {
  return project.personal ? subject : `${project.id} ${subject}`;
}
