import { existsSync, readdirSync, renameSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import Database from "libsql";
import type { DatabaseLogger } from "./database-types.js";
import { createReplicaClient, type ReplicaClient, type ReplicaClientOptions } from "./replica-client.js";

// Opening an embedded replica: a local copy found corrupt at start is moved aside (kept for inspection) and
// bootstrapped again from the primary, which holds every acknowledged write.

const CORRUPT = /database disk image is malformed|SQLITE_CORRUPT/;

/** Why the local copy at `path` cannot serve, or undefined when it is sound (or does not exist yet). */
export function inspectLocalCopy(path: string, encryptionKey: string | undefined): string | undefined {
  if (!existsSync(path)) return undefined;
  let db: Database.Database | undefined;
  try {
    db = new Database(path, encryptionKey === undefined ? {} : ({ encryptionKey } as Database.Options));
    // read only: nothing here writes the file the replicator owns
    db.exec("PRAGMA query_only=ON");
    const rows = db.prepare("PRAGMA quick_check").raw(true).all() as unknown[][];
    const verdict = rows.map((row) => String(row[0])).join("; ");
    return verdict === "ok" ? undefined : `quick_check: ${verdict}`;
  } catch (err) {
    const { message, code } = err as { message?: string; code?: string };
    if (CORRUPT.test(`${code ?? ""} ${message ?? ""}`)) return String(message);
    // anything else (a wrong encryption key, permissions) is not corruption: the open reports it
    return undefined;
  } finally {
    db?.close();
  }
}

/** Moves the local copy and its side files (`-wal`, `-shm`, `-client_wal_index`, ...) to `<path>.corrupt-<time>`. */
export function moveAside(path: string, now: Date = new Date()): string {
  const stamp = now.toISOString().replace(/[:.]/g, "-");
  const target = `${path}.corrupt-${stamp}`;
  const dir = dirname(path);
  const name = basename(path);
  for (const entry of readdirSync(dir)) {
    if (entry === name || (entry.startsWith(`${name}-`) && !entry.includes(".corrupt-"))) {
      renameSync(join(dir, entry), `${target}${entry.slice(name.length)}`);
    }
  }
  return target;
}

/**
 * Opens the replica on `options.path`. A local copy that fails `quick_check`, or that the replicator reports
 * malformed while catching up, is moved aside (logged with where it went) and the replica bootstrapped afresh.
 */
/**
 * Local copies this process has open. Two replica connections on one file are two replicators injecting into it
 * (what corrupted replicas: replica-client.ts), so a second open of the same file is refused while the first is
 * open. Another process must not open it either; that is the deployment's to ensure (one volume per instance).
 */
const openCopies = new Set<string>();

export async function openReplica(
  options: ReplicaClientOptions,
  logger: DatabaseLogger | undefined,
): Promise<ReplicaClient> {
  if (openCopies.has(options.path)) {
    throw new Error(
      `${options.path} is already open as an embedded replica in this process: close that database first (two replicators on one file corrupt it)`,
    );
  }
  openCopies.add(options.path);
  try {
    const client = await openOnce(options, logger);
    void client.stopped.then(() => openCopies.delete(options.path));
    return client;
  } catch (err) {
    openCopies.delete(options.path);
    throw err;
  }
}

async function openOnce(
  options: ReplicaClientOptions,
  logger: DatabaseLogger | undefined,
): Promise<ReplicaClient> {
  const recover = (reason: string) => {
    const movedTo = moveAside(options.path);
    logger?.error?.(
      { path: options.path, movedTo, reason },
      "embedded replica: the local copy is corrupt; moved aside, bootstrapping it again from the primary",
    );
  };
  const found = inspectLocalCopy(options.path, options.encryptionKey);
  if (found !== undefined) recover(found);
  const client = createReplicaClient(options);
  try {
    await client.ready;
    return client;
  } catch (err) {
    client.close();
    await client.stopped;
    const message = String((err as Error).message);
    if (/file is not a database/.test(message)) {
      // not corruption: the wrong (or no) key; moving the copy aside would hide the misconfiguration
      throw new Error(
        `cannot open ${options.path}: not a database, or encrypted with another (or no) encryption key`,
        { cause: err },
      );
    }
    if (!CORRUPT.test(message)) throw err;
    recover(message);
  }
  const fresh = createReplicaClient(options);
  try {
    await fresh.ready;
  } catch (err) {
    fresh.close();
    await fresh.stopped;
    throw err;
  }
  return fresh;
}
