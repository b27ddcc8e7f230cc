import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { type Client, createClient } from "@libsql/client";
import type { DatabaseMode, DatabaseOptions } from "./database-types.js";
import { createLocalClient } from "./local-client.js";
import type { ReplicaClient } from "./replica-client.js";
import { openReplica } from "./replica-open.js";

// The engine and client factory: which engine a URL names, and the clients a Database runs on for it.

export const DEFAULT_BUSY_TIMEOUT_MS = 5_000;
/** An embedded replica's reads are local: without a sync of its own it would never see other writers'. */
export const DEFAULT_REPLICA_SYNC_INTERVAL_MS = 1_000;
export const DEFAULT_REMOTE_REQUEST_TIMEOUT_MS = 30_000;
/** Connections of the `file:` tooling client ({@link Database.client}): ad-hoc calls borrow one only briefly. */
const TOOLING_CONCURRENCY = 2;

export interface ParsedUrl {
  mode: DatabaseMode;
  /** Filesystem path for file/replica. */
  path?: string;
}

export function parseDatabaseUrl(url: string, syncUrl: string | undefined): ParsedUrl {
  const colon = url.indexOf(":");
  const scheme = colon > 0 ? url.slice(0, colon).toLowerCase() : "";
  if (scheme === "file") {
    let rest = url.slice("file:".length);
    const query = rest.indexOf("?");
    if (query >= 0) rest = rest.slice(0, query);
    // file:///abs and file://localhost/abs carry an (empty) authority before the path
    if (rest.startsWith("//")) {
      const slash = rest.indexOf("/", 2);
      rest = slash >= 0 ? rest.slice(slash) : "";
    }
    const path = decodeURIComponent(rest);
    if (path === "" || path.startsWith(":memory:")) {
      // every pooled connection would open its own empty in-memory database
      throw new Error(
        `DATABASE_URL ${JSON.stringify(url)}: in-memory databases are not supported; use a file`,
      );
    }
    return { mode: syncUrl ? "replica" : "file", path: resolve(path) };
  }
  if (scheme === "libsql" || scheme === "http" || scheme === "https") {
    if (syncUrl) {
      throw new Error("an embedded replica needs a file: url (the local copy) and syncUrl (the primary)");
    }
    return { mode: "remote" };
  }
  throw new Error(
    `unsupported database URL scheme ${JSON.stringify(`${scheme}:`)}: use file:, libsql:, http: or https:`,
  );
}

export interface EngineClients {
  mode: DatabaseMode;
  /** The local file (`file:`, an embedded replica's copy); "" for a remote engine. */
  localPath: string;
  /** SQLite's busy timeout for local connections. */
  timeout: number;
  /**
   * The client write units of work run on: a single connection on `file:`; the HTTP (or WebSocket) client of
   * the server on a remote engine, and of the primary for an embedded replica.
   */
  writer: Client;
  /** {@link Database.client}: the tooling client on `file:`, the replica connection, the writer on remote. */
  reader: Client;
  /** Whether write units go to a server over the network (remote, and a replica's primary). */
  remoteWriter: boolean;
  /** An embedded replica's own connection (its sync): {@link writer} commits on the primary, this pulls it. */
  replica?: ReplicaClient | undefined;
}

/**
 * The remote client's `fetch`: each request abandoned after `timeoutMs` (see `requestTimeoutMs`), and asking
 * for uncompressed responses. sqld gzips every Hrana response the client accepts gzip for (fetch always does),
 * and a gunzip stream per response was a fifth of prompt-service's CPU under GetPrompt on sqld, plus sqld's own
 * compression: Hrana answers are small JSON, and the database sits next to the service.
 */
function remoteFetch(timeoutMs: number) {
  return (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    request.headers.set("accept-encoding", "identity");
    const timeout = AbortSignal.timeout(timeoutMs);
    return fetch(request, { signal: AbortSignal.any([request.signal, timeout]) });
  };
}

/**
 * Opens the clients of `options`' engine. `file:`: a writer with exactly one connection (so connection-level
 * pragmas set once — synchronous=NORMAL, foreign_keys — stay set, and foreign-key toggling for migrations
 * reaches the transaction's connection), in WAL mode, and a small tooling pool (read units of work have a
 * read-only pool of their own, see read-pool.ts). Remote: one client. Embedded replica: one client with a
 * single connection (libSQL's limit).
 */
export async function openEngine(options: DatabaseOptions<Record<string, unknown>>): Promise<EngineClients> {
  const parsed = parseDatabaseUrl(options.url, options.syncUrl);
  const localPath = parsed.path ?? "";
  const timeout = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
  const engine = (writer: Client, reader: Client, replica?: ReplicaClient): EngineClients => ({
    mode: parsed.mode,
    localPath,
    timeout,
    writer,
    reader,
    remoteWriter: parsed.mode !== "file",
    replica,
  });
  const serverClient = (url: string) =>
    createClient({
      url,
      authToken: options.authToken,
      fetch: remoteFetch(options.requestTimeoutMs ?? DEFAULT_REMOTE_REQUEST_TIMEOUT_MS),
    });

  if (parsed.mode === "remote") {
    const client = serverClient(options.url);
    return engine(client, client);
  }
  mkdirSync(dirname(localPath), { recursive: true });
  if (parsed.mode === "replica") {
    // One replica connection for the life of the database, in a worker (replica-client.ts); read units of
    // work read the local file through read-only connections of their own (read-path.ts).
    let syncFailing = false;
    const client = await openReplica(
      {
        path: localPath,
        syncUrl: options.syncUrl ?? "",
        authToken: options.authToken,
        encryptionKey: options.encryptionKey,
        syncIntervalMs: options.syncIntervalMs ?? DEFAULT_REPLICA_SYNC_INTERVAL_MS,
        onSyncError: (err) => {
          if (err === undefined) {
            if (syncFailing) options.logger?.info?.({}, "embedded replica: syncing from the primary again");
            syncFailing = false;
          } else if (!syncFailing) {
            syncFailing = true;
            options.logger?.warn?.(
              { err },
              "embedded replica: sync from the primary failed; serving local data",
            );
          }
        },
      },
      options.logger,
    );
    // Write units go to the primary over its HTTP API, as on a remote engine (one batch, <= 2 round trips),
    // and the replica then syncs before the unit returns (database.ts); the replica connection's own write
    // delegation sends each statement separately and syncs after each. Database.client keeps that path.
    return engine(serverClient(options.syncUrl ?? ""), client, client);
  }
  const writer = createLocalClient({
    path: localPath,
    timeout,
    concurrency: 1,
    encryptionKey: options.encryptionKey,
  });
  try {
    // WAL persists in the file; it must be set before any transaction, and it is what lets readers
    // run beside the writer.
    await writer.execute("PRAGMA journal_mode=WAL");
    await configureWriterConnection(writer);
  } catch (err) {
    writer.close();
    if ((err as { code?: unknown }).code === "SQLITE_NOTADB") {
      throw new Error(
        `cannot open ${localPath}: not a database, or encrypted with another (or no) encryption key`,
        { cause: err },
      );
    }
    throw err;
  }
  // tooling only (Database.client, drizzle()); read units have their own read-only pool
  const tooling = createLocalClient({
    path: localPath,
    timeout,
    concurrency: TOOLING_CONCURRENCY,
    encryptionKey: options.encryptionKey,
  });
  return engine(writer, tooling);
}

/** Per-connection settings of the single writer connection (WAL is a property of the file, set once). */
export async function configureWriterConnection(writer: Client): Promise<void> {
  // NORMAL is durable against process crashes in WAL (an OS crash may lose the last commits) and measured
  // faster than FULL; it is a per-connection setting, which is one reason the writer has one connection.
  await writer.execute("PRAGMA synchronous=NORMAL");
  await writer.execute("PRAGMA foreign_keys=ON");
}
