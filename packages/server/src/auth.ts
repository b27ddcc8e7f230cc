import { createRemoteJWKSet, type JWTPayload, errors as joseErrors, jwtVerify, SignJWT } from "jose";
import { roles as knownRoles, type Principal, type Role } from "./context.js";
import { UnauthenticatedError, UnavailableError } from "./errors.js";
import {
  allProjects,
  isProjectRole,
  type ProjectRole,
  projectRoles,
  teamProjectPattern,
} from "./projects.js";

/** How bearer tokens are verified: an HS256 secret (UTF-8, >= 32 bytes) or a JWKS URL. */
export type AuthConfig = (
  | { readonly secret: string | Uint8Array; readonly jwksUrl?: undefined }
  | { readonly jwksUrl: string | URL; readonly secret?: undefined }
) & {
  readonly issuer?: string;
  readonly audience?: string;
  /**
   * Subjects whose tokens may carry `projects: "*"` (a service principal of every project). Default
   * `evaluation-service` alone: its feed consumer is the one principal that reads every project's events.
   */
  readonly allProjectsSubjects?: readonly string[];
};

/** The only subject allowed an all-projects token unless configured otherwise. */
export const defaultAllProjectsSubjects: readonly string[] = ["evaluation-service"];

export type Authenticator = (authorization: string | null) => Promise<Principal>;

const minSecretBytes = 32;

function secretBytes(secret: string | Uint8Array): Uint8Array {
  const bytes = typeof secret === "string" ? new TextEncoder().encode(secret) : secret;
  if (bytes.byteLength < minSecretBytes) {
    throw new Error(`the HS256 secret must be at least ${minSecretBytes} bytes (got ${bytes.byteLength})`);
  }
  return bytes;
}

function isRole(value: unknown): value is Role {
  return typeof value === "string" && (knownRoles as readonly string[]).includes(value);
}

function rolesClaim(claim: unknown): Role[] {
  if (claim === undefined) return ["user"];
  if (Array.isArray(claim) && claim.every(isRole)) return [...new Set(claim)];
  throw new UnauthenticatedError(`token claim roles must be an array of ${knownRoles.join(", ")}`);
}

/** `projects`: `{ "<project>": "<role>" }` for members; `"*"` for the all-projects service principal. */
function projectsClaim(claim: unknown): Map<string, ProjectRole> | typeof allProjects {
  if (claim === undefined) return new Map();
  if (claim === allProjects) return allProjects;
  if (typeof claim !== "object" || claim === null || Array.isArray(claim)) {
    throw new UnauthenticatedError('token claim projects must be an object {"<project>": "<role>"} or "*"');
  }
  const projects = new Map<string, ProjectRole>();
  for (const [id, role] of Object.entries(claim)) {
    if (!teamProjectPattern.test(id)) {
      throw new UnauthenticatedError(
        `token claim projects: ${JSON.stringify(id).slice(0, 80)} is not a project id`,
      );
    }
    if (!isProjectRole(role)) {
      throw new UnauthenticatedError(`token claim projects.${id} must be one of ${projectRoles.join(", ")}`);
    }
    projects.set(id, role);
  }
  return projects;
}

function principalFromClaims(
  payload: JWTPayload,
  token: string,
  allProjectsSubjects: readonly string[],
): Principal {
  if (typeof payload.sub !== "string" || payload.sub === "") {
    throw new UnauthenticatedError("token has no subject");
  }
  const roles = rolesClaim(payload.roles);
  const projects = projectsClaim(payload.projects);
  const project = payload.project;
  if (project !== undefined && (typeof project !== "string" || !teamProjectPattern.test(project))) {
    throw new UnauthenticatedError("token claim project must be a project id");
  }
  const service = roles.includes("service");
  if (projects === allProjects) {
    if (!service || project !== undefined) {
      throw new UnauthenticatedError(
        'token claim projects "*" is for a service principal (roles ["service"]) only',
      );
    }
    if (!allProjectsSubjects.includes(payload.sub)) {
      throw new UnauthenticatedError(`token claim projects "*" is not allowed for subject ${payload.sub}`);
    }
    return { subject: payload.sub, roles, projects: new Map(), serviceProject: allProjects, token };
  }
  if (project !== undefined) {
    if (!service || projects.size > 0) {
      throw new UnauthenticatedError(
        'token claim project names a service principal\'s project: it needs roles ["service"] and no projects claim',
      );
    }
    return { subject: payload.sub, roles, projects, serviceProject: project, token };
  }
  return { subject: payload.sub, roles, projects, serviceProject: undefined, token };
}

/** Verifies `authorization: Bearer <JWT>` and returns the principal; throws UNAUTHENTICATED otherwise. */
export function createAuthenticator(config: AuthConfig): Authenticator {
  const options = {
    ...(config.issuer === undefined ? {} : { issuer: config.issuer }),
    ...(config.audience === undefined ? {} : { audience: config.audience }),
  };
  const verify =
    config.secret !== undefined
      ? (() => {
          const key = secretBytes(config.secret);
          return (token: string) => jwtVerify(token, key, { ...options, algorithms: ["HS256"] });
        })()
      : (() => {
          const jwks = createRemoteJWKSet(new URL(config.jwksUrl));
          return (token: string) => jwtVerify(token, jwks, options);
        })();

  const allProjectsSubjects = config.allProjectsSubjects ?? defaultAllProjectsSubjects;
  // Verified tokens, so a client reusing its token (the usual case) costs no signature check per call.
  // An entry lives until the token expires, at most cacheTtlMs (bounds the effect of a JWKS key rotation).
  const cache = new Map<string, { principal: Principal; until: number }>();
  const cacheMax = 10_000;
  const cacheTtlMs = 60_000;

  return async (authorization) => {
    if (authorization === null || authorization === "") {
      throw new UnauthenticatedError("missing bearer token");
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    const token = match?.[1];
    if (token === undefined) throw new UnauthenticatedError("authorization must be `Bearer <token>`");
    const now = Date.now();
    const hit = cache.get(token);
    if (hit !== undefined) {
      if (hit.until > now) return hit.principal;
      cache.delete(token);
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await verify(token));
    } catch (e) {
      // The key set could not be fetched or read (timeout, non-200, not JSON, network error): that is our
      // problem, not the caller's. jose reports the last three as a bare JOSEError / TypeError.
      const keySetDown =
        e instanceof joseErrors.JWKSTimeout ||
        (config.jwksUrl !== undefined &&
          (!(e instanceof joseErrors.JOSEError) || e.constructor === joseErrors.JOSEError));
      if (keySetDown) throw new UnavailableError("token keys are unavailable");
      if (e instanceof joseErrors.JWTExpired) throw new UnauthenticatedError("token expired");
      if (e instanceof joseErrors.JOSEError) throw new UnauthenticatedError("invalid token");
      throw e;
    }
    const principal = principalFromClaims(payload, token, allProjectsSubjects);
    if (cache.size >= cacheMax) {
      const oldest = cache.keys().next();
      if (oldest.done !== true) cache.delete(oldest.value);
    }
    const expires = payload.exp === undefined ? Number.POSITIVE_INFINITY : payload.exp * 1000;
    cache.set(token, { principal, until: Math.min(expires, now + cacheTtlMs) });
    return principal;
  };
}

/** Claims of a token this kit can sign (see `principalFromClaims` for how they are read). */
export interface TokenClaims {
  readonly sub: string;
  readonly roles?: readonly Role[];
  /** Team projects and a role in each, or `*` (service principals of every project). */
  readonly projects?: Readonly<Record<string, ProjectRole>> | typeof allProjects;
  /** A service principal's one project. */
  readonly project?: string;
  /** Seconds, or a jose time span such as "1h". */
  readonly ttl?: number | string;
}

export interface TokenSigner {
  /** Signs an HS256 token. */
  signToken(claims: TokenClaims): Promise<string>;
}

/** Dev tokens and test tokens, signed with the same HS256 secret the server verifies. */
export function createTokenSigner(
  secret: string | Uint8Array,
  options: { issuer?: string; audience?: string } = {},
): TokenSigner {
  const key = secretBytes(secret);
  return {
    async signToken({ sub, roles = ["user"], projects, project, ttl = 3600 }) {
      let jwt = new SignJWT({
        roles: [...roles],
        ...(projects === undefined ? {} : { projects }),
        ...(project === undefined ? {} : { project }),
      })
        .setProtectedHeader({ alg: "HS256", typ: "JWT" })
        .setSubject(sub)
        .setIssuedAt()
        .setExpirationTime(typeof ttl === "number" ? Math.floor(Date.now() / 1000) + ttl : ttl);
      if (options.issuer !== undefined) jwt = jwt.setIssuer(options.issuer);
      if (options.audience !== undefined) jwt = jwt.setAudience(options.audience);
      return jwt.sign(key);
    },
  };
}
