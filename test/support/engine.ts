/**
 * The database engine the suites run on, read from `TEST_DATABASE` here and nowhere else:
 *
 * - `file` (default): an embedded libSQL file in the test's temp dir;
 * - `sqld`: a real sqld (libsql-server) over HTTP, with JWT auth, one server per database of a test;
 * - `replica`: an embedded replica, a local file in the test's temp dir syncing from its own sqld primary.
 *
 * Every suite's database helper opens its databases through {@link engineLocation}, so one suite written once
 * runs on each engine (`TEST_DATABASE=sqld npx vitest run services/prompt-service/test`). A test about one engine
 * only names a capability that engine has ({@link itWith}, {@link describeWith}); on the others it is reported
 * as skipped, with the capability in its title (`[needs wal]`).
 */
import { join } from "node:path";
import { describe, it, onTestFinished, type TestFunction } from "vitest";
import { type SqldServer, sqldForTest } from "./sqld.js";

export type EngineName = "file" | "sqld" | "replica";
export const engineNames: readonly EngineName[] = ["file", "sqld", "replica"];

/** `TEST_DATABASE` (unset or empty: `file`); anything else is refused, naming the allowed values. */
export function engineFromEnv(env: NodeJS.ProcessEnv = process.env): EngineName {
  const value = env.TEST_DATABASE ?? "";
  if (value === "") return "file";
  if ((engineNames as readonly string[]).includes(value)) return value as EngineName;
  throw new Error(`TEST_DATABASE=${JSON.stringify(value)}: expected one of ${engineNames.join(", ")}`);
}

/** The engine of this test run. */
export const testEngine: EngineName = engineFromEnv();

/**
 * What a test may rely on beyond the behaviour every engine shares. A test that needs one says so; the list of
 * tests skipped per engine is then the list of titles with `[needs <capability>]`.
 */
export type Capability =
  /** The service's database is a file of this machine that the test may open, copy, corrupt or inspect. */
  | "localFile"
  /** `-wal` / `-shm` files beside the database, and `PRAGMA journal_mode` answering `wal`. */
  | "wal"
  /** `VACUUM INTO` a copy (`migrate check` on a copy; on sqld / Turso a branch is checked `--in-place`). */
  | "vacuumInto"
  /** Several OS processes open the same database file (SQLITE_BUSY between them, busy_timeout). */
  | "multiProcessFile"
  /** ANALYZE, `PRAGMA optimize`, VACUUM and REINDEX run (sqld and replicas report them not applicable). */
  | "localMaintenance"
  /**
   * Two connections on one file: while one holds the write lock, another writer fails SQLITE_BUSY after its
   * `busyTimeoutMs` (sqld queues it for up to 5 s, then gives the lock away: TRANSACTION_TIMEOUT).
   */
  | "sqliteBusy"
  /**
   * Errors carry SQLite's own result codes: `SQLITE_ERROR` for a missing table, extended codes such as
   * `SQLITE_CONSTRAINT_TRIGGER` on a raw client's LibsqlError. sqld's Hrana sends `SQLITE_UNKNOWN` and primary
   * codes only.
   */
  | "sqliteErrorCodes"
  /**
   * Write units queued behind the writer share one transaction (group commit), with one COMMIT for the group.
   * On a file only: on sqld and replicas each unit is one batch of at most two round trips, and a group would
   * need a SAVEPOINT round trip per unit while holding the primary's write lock (which sqld takes back after 5 s).
   */
  | "groupCommit"
  /**
   * One query may answer more than 10 MB (sqld's default `--max-response-size`, RESPONSE_TOO_LARGE beyond): a
   * list of versions with several 900 KB contents and diffs reads that much before the page's byte cap applies.
   */
  | "responsesOver10MB";

/** The capabilities of each engine: what each differs in by design, not a bug waiting for a fix. */
export const engineCapabilities: Readonly<Record<EngineName, ReadonlySet<Capability>>> = {
  file: new Set<Capability>([
    "localFile",
    "wal",
    "vacuumInto",
    "multiProcessFile",
    "localMaintenance",
    "sqliteBusy",
    "sqliteErrorCodes",
    "groupCommit",
    "responsesOver10MB",
  ]),
  sqld: new Set<Capability>([]),
  replica: new Set<Capability>(["localFile", "responsesOver10MB"]),
};

/** Whether `engine` (default: this run's) has `capability`. */
export function has(capability: Capability, engine: EngineName = testEngine): boolean {
  return engineCapabilities[engine].has(capability);
}

function titled(title: string, needs: readonly Capability[]): string {
  return needs.length === 0 ? title : `${title} [needs ${needs.join(", ")}]`;
}

/** `it` for a test that needs `capability` (or several): reported as skipped on an engine without it. */
export function itWith(
  capability: Capability | readonly Capability[],
  title: string,
  fn: TestFunction,
  timeout?: number,
): void {
  const needs = typeof capability === "string" ? [capability] : capability;
  it.runIf(needs.every((c) => has(c)))(titled(title, needs), fn, timeout);
}

/**
 * `it` for what an engine does where it lacks `capability` (sqld's answer to a page over 10 MB): titled
 * `[without <capability>]`, reported as skipped on the engines that have it.
 */
export function itWithout(capability: Capability, title: string, fn: TestFunction, timeout?: number): void {
  it.runIf(!has(capability))(`${title} [without ${capability}]`, fn, timeout);
}

/** `describe` for tests that all need `capability` (or several): reported as skipped without it. */
export function describeWith(
  capability: Capability | readonly Capability[],
  title: string,
  suite: () => void,
): void {
  const needs = typeof capability === "string" ? [capability] : capability;
  describe.runIf(needs.every((c) => has(c)))(titled(title, needs), suite);
}

/** Where one database of a test lives on the current engine: what a `createDatabase` or a process gets. */
export interface EngineLocation {
  readonly engine: EngineName;
  /** `DATABASE_URL`: `file:<dir>/<name>.db` (file, replica) or the sqld's `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** `DATABASE_SYNC_URL` of a replica: its primary. */
  readonly syncUrl: string | undefined;
  /** `DATABASE_AUTH_TOKEN` for sqld / the replica's primary (full access). */
  readonly authToken: string | undefined;
  /** The local file (file, replica); undefined on sqld. */
  readonly path: string | undefined;
  /** The sqld behind it (sqld, replica). */
  readonly server: SqldServer | undefined;
}

/** Locations handed out during the current test, by `<dir>/<name>`: the same database when asked again. */
const locations = new Map<string, Promise<EngineLocation>>();

/**
 * The database `name` of a test in `dir` (the test's temp dir) on `engine` (default: this run's). On sqld and
 * replica an sqld with JWT auth is started for it and stopped when the test finishes; asking again for the same
 * `dir` and `name` in the same test returns the same database (a service restarted on its data). Call it before
 * registering the close of the database, so the database is closed before its server stops (vitest runs
 * onTestFinished callbacks in reverse).
 */
export function engineLocation(
  dir: string,
  name: string,
  engine: EngineName = testEngine,
): Promise<EngineLocation> {
  const key = `${engine}:${join(dir, name)}`;
  const known = locations.get(key);
  if (known !== undefined) return known;
  const path = join(dir, `${name}.db`);
  const located = (async (): Promise<EngineLocation> => {
    if (engine === "file") {
      return {
        engine,
        url: `file:${path}`,
        syncUrl: undefined,
        authToken: undefined,
        path,
        server: undefined,
      };
    }
    const server = await sqldForTest({ auth: true });
    onTestFinished(() => {
      locations.delete(key);
    });
    if (engine === "sqld") {
      return {
        engine,
        url: server.url,
        syncUrl: undefined,
        authToken: server.authToken,
        path: undefined,
        server,
      };
    }
    return { engine, url: `file:${path}`, syncUrl: server.url, authToken: server.authToken, path, server };
  })();
  locations.set(key, located);
  located.catch(() => locations.delete(key));
  return located;
}

/** `createDatabase` options for a location. */
export function databaseOptions(location: EngineLocation): {
  url: string;
  syncUrl?: string;
  authToken?: string;
} {
  return {
    url: location.url,
    ...(location.syncUrl === undefined ? {} : { syncUrl: location.syncUrl }),
    ...(location.authToken === undefined ? {} : { authToken: location.authToken }),
  };
}

/**
 * `createDatabase` options for another process on the same database: the same file, the same sqld, or, for a
 * replica, its primary (where another instance of the service would write).
 */
export function peerOptions(location: EngineLocation): { url: string; authToken?: string } {
  const url = location.syncUrl ?? location.url;
  return location.authToken === undefined ? { url } : { url, authToken: location.authToken };
}

/** The environment a service process gets for a location: `DATABASE_URL`, `DATABASE_SYNC_URL`, `DATABASE_AUTH_TOKEN`. */
export function databaseEnv(location: EngineLocation): Record<string, string> {
  return {
    DATABASE_URL: location.url,
    ...(location.syncUrl === undefined ? {} : { DATABASE_SYNC_URL: location.syncUrl }),
    ...(location.authToken === undefined ? {} : { DATABASE_AUTH_TOKEN: location.authToken }),
  };
}
