import { Buffer } from "node:buffer";
import {
  type Client,
  type InArgs,
  type InStatement,
  type InValue,
  LibsqlBatchError,
  LibsqlError,
  type Replicated,
  type ResultSet,
  type Row,
  type Transaction,
  type TransactionMode,
  type Value,
} from "@libsql/client";
import { ConnectionPool } from "@libsql/client/sqlite3";
import { ResultSetImpl } from "@libsql/core/util";
import Database from "libsql";

/**
 * A `file:` {@link Client} that keeps each connection's prepared statements.
 *
 * `@libsql/client` 0.18's local client prepares every statement again on every execution (and asks libSQL for
 * the column list again): under load that was the largest single cost of a read RPC (test/load/README.md).
 * This client keeps the same connection pool (`ConnectionPool` from `@libsql/client/sqlite3`, exact pin), the
 * same `Client`/`Transaction` semantics, result class (`@libsql/core`) and error types, so drizzle's libSQL driver and the rest of
 * the kit cannot tell the difference, and adds a bounded per-connection statement cache:
 * packages/db/bench/statements.ts measures both.
 *
 * Values follow `intMode: "number"`: integers come back as numbers, and one beyond 2^53 throws a RangeError
 * instead of losing precision; blobs come back as ArrayBuffers.
 */
export interface LocalClientOptions {
  /** Filesystem path of the database file. */
  path: string;
  /** SQLite busy timeout (ms) against other processes. */
  timeout: number;
  /** Connections in the pool. */
  concurrency: number;
  encryptionKey?: string;
  /** Prepared statements kept per connection (least recently used are dropped first). */
  statementCacheSize?: number;
}

const DEFAULT_STATEMENT_CACHE_SIZE = 256;

type Connection = Database.Database;
type Statement = ReturnType<Connection["prepare"]>;

/** A prepared statement and what it returns, worked out once. */
interface CachedStatement {
  stmt: Statement;
  /** Returns rows (SELECT, PRAGMA with a result, `RETURNING`). */
  reader: boolean;
  columns: string[];
  columnTypes: string[];
  makeRow: (values: unknown[]) => Row;
}

export function createLocalClient(options: LocalClientOptions): Client {
  const pool = new ConnectionPool(
    options.path,
    { timeout: options.timeout, encryptionKey: options.encryptionKey } as Database.Options,
    Math.max(1, options.concurrency),
  );
  const statements = new StatementCache(options.statementCacheSize ?? DEFAULT_STATEMENT_CACHE_SIZE);
  // fail fast if the database cannot be opened at all (wrong key, not a database), as createClient does
  const probe = pool.acquireSync();
  try {
    statements.execute(probe, "SELECT 1");
  } catch (err) {
    pool.close();
    throw err;
  }
  pool.release(probe);
  return new LocalClient(pool, statements);
}

/** Statements per connection, in least-recently-used order (a Map iterates in insertion order). */
class StatementCache {
  readonly #byConnection = new WeakMap<Connection, Map<string, CachedStatement>>();
  readonly #size: number;

  constructor(size: number) {
    this.#size = size;
  }

  execute(db: Connection, stmt: InStatement): ResultSet {
    const sql = typeof stmt === "string" ? stmt : stmt.sql;
    const args = typeof stmt === "string" ? [] : bindArgs(stmt.args);
    let cache = this.#byConnection.get(db);
    if (cache === undefined) {
      cache = new Map();
      this.#byConnection.set(db, cache);
    }
    let cached = cache.get(sql);
    try {
      if (cached === undefined) {
        cached = prepare(db, sql);
        if (cache.size >= this.#size) {
          const oldest = cache.keys().next();
          if (oldest.done !== true) cache.delete(oldest.value);
        }
      } else {
        cache.delete(sql); // re-inserted below: most recently used last
      }
      const result = run(cached, args);
      cache.set(sql, cached);
      if (!cached.reader && SCHEMA_CHANGE.test(sql)) cache.clear();
      return result;
    } catch (err) {
      // a statement that failed mid-step is not reused (it is finalized when collected)
      throw mapSqliteError(err);
    }
  }

  /** Runs a script (several statements, no arguments) outside the cache. */
  executeMultiple(db: Connection, sql: string): void {
    try {
      db.exec(sql);
    } catch (err) {
      throw mapSqliteError(err);
    } finally {
      this.#byConnection.get(db)?.clear();
    }
  }
}

/** DDL can change what a cached `SELECT *` returns: such a statement empties its connection's cache. */
const SCHEMA_CHANGE = /^\s*(create|drop|alter)\b/i;

function prepare(db: Connection, sql: string): CachedStatement {
  const stmt = db.prepare(sql);
  stmt.safeIntegers(true);
  const reader = stmt.reader;
  if (!reader) {
    return { stmt, reader, columns: [], columnTypes: [], makeRow: () => ({ length: 0 }) as Row };
  }
  stmt.raw(true);
  return { stmt, reader, ...describeColumns(stmt) };
}

function run(cached: CachedStatement, args: unknown[] | Record<string, unknown>): ResultSet {
  const { stmt } = cached;
  if (!cached.reader) {
    const info = stmt.run(args);
    return new ResultSetImpl([], [], [], info.changes, BigInt(info.lastInsertRowid));
  }
  const raw = stmt.all(args) as unknown[][];
  const first = raw[0];
  if (first !== undefined && first.length !== cached.columns.length) {
    // the schema changed under a cached `SELECT *` (another connection ran DDL): SQLite re-prepared the
    // statement by itself; learn its columns again
    Object.assign(cached, describeColumns(stmt));
  }
  const rows = new Array<Row>(raw.length);
  for (let i = 0; i < raw.length; i++) rows[i] = cached.makeRow(raw[i] as unknown[]);
  return new ResultSetImpl(cached.columns, cached.columnTypes, rows, 0, undefined);
}

function describeColumns(stmt: Statement): Pick<CachedStatement, "columns" | "columnTypes" | "makeRow"> {
  const definitions = stmt.columns();
  const columns = definitions.map((c) => c.name);
  return { columns, columnTypes: definitions.map((c) => c.type ?? ""), makeRow: rowMaker(columns) };
}

const VALUES = Symbol("values");

/**
 * Rows as `@libsql/client` shapes them: each column by name (enumerable, first of duplicate names wins) and
 * by index (not enumerable), plus a non-enumerable `length`. The index accessors and `length` live on one
 * prototype per statement instead of being defined on every row.
 */
export function rowMaker(columns: string[]): (values: unknown[]) => Row {
  const proto: Record<PropertyKey, unknown> = {};
  Object.defineProperty(proto, "length", { value: columns.length });
  for (let i = 0; i < columns.length; i++) {
    Object.defineProperty(proto, i, {
      get(this: { [VALUES]: Value[] }) {
        return this[VALUES][i];
      },
    });
  }
  // Which names are enumerable and which value each shows, worked out as @libsql/client's rowFromSql defines
  // them one by one (index i, then name i unless already defined; a numeric name can be redefined by a later
  // index, which keeps its enumerability and takes that index's value).
  const own = new Map<string, { enumerable: boolean; index: number }>([
    ["length", { enumerable: false, index: -1 }],
  ]);
  columns.forEach((name, i) => {
    const byIndex = own.get(String(i));
    if (byIndex === undefined) own.set(String(i), { enumerable: false, index: i });
    else byIndex.index = i;
    if (!own.has(name)) own.set(name, { enumerable: true, index: i });
  });
  const named = [...own].filter(([, p]) => p.enumerable).map(([name, p]) => [name, p.index] as const);
  // names that a plain assignment would not make an own data property (an index with a getter on the
  // prototype, __proto__) are defined instead
  const plain = named.filter(([name]) => !/^\d+$/.test(name) && name !== "__proto__");
  const special = named.filter((entry) => !plain.includes(entry));
  return (values) => {
    const converted = values.map(valueFromSql);
    const row = Object.create(proto) as Record<PropertyKey, unknown>;
    Object.defineProperty(row, VALUES, { value: converted });
    for (const [name, i] of plain) row[name] = converted[i];
    for (const [name, i] of special) {
      Object.defineProperty(row, name, {
        value: converted[i],
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return row as unknown as Row;
  };
}

const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_INTEGER = -9223372036854775808n;
const MAX_INTEGER = 9223372036854775807n;

function valueFromSql(value: unknown): Value {
  if (typeof value === "bigint") {
    if (value < MIN_SAFE || value > MAX_SAFE) {
      throw new RangeError("Received integer which cannot be safely represented as a JavaScript number");
    }
    return Number(value);
  }
  // a Buffer, or a blob posted from another thread (structured clone makes it a plain Uint8Array)
  if (value instanceof Uint8Array) {
    return value.byteOffset === 0 && value.byteLength === value.buffer.byteLength
      ? (value.buffer as ArrayBuffer)
      : (value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength) as ArrayBuffer);
  }
  return value as Value;
}

function valueToSql(value: InValue): unknown {
  if (typeof value === "number") {
    if (!Number.isFinite(value)) {
      throw new RangeError("Only finite numbers (not Infinity or NaN) can be passed as arguments");
    }
    return value;
  }
  if (typeof value === "bigint") {
    if (value < MIN_INTEGER || value > MAX_INTEGER) {
      throw new RangeError(
        "bigint is too large to be represented as a 64-bit integer and passed as argument",
      );
    }
    return value;
  }
  if (typeof value === "boolean") return value ? 1 : 0;
  if (value instanceof ArrayBuffer) return Buffer.from(value);
  if (value instanceof Date) return value.valueOf();
  if (value === undefined) throw new TypeError("undefined cannot be passed as argument to the database");
  return value;
}

export function bindArgs(args: InArgs | undefined): unknown[] | Record<string, unknown> {
  if (args === undefined) return [];
  if (Array.isArray(args)) return args.map(valueToSql);
  const named: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(args)) {
    const name = key[0] === "@" || key[0] === "$" || key[0] === ":" ? key.slice(1) : key;
    named[name] = valueToSql(value);
  }
  return named;
}

const SQLITE_ERROR_CODES: Record<number, string> = {
  1: "SQLITE_ERROR",
  2: "SQLITE_INTERNAL",
  3: "SQLITE_PERM",
  4: "SQLITE_ABORT",
  5: "SQLITE_BUSY",
  6: "SQLITE_LOCKED",
  7: "SQLITE_NOMEM",
  8: "SQLITE_READONLY",
  9: "SQLITE_INTERRUPT",
  10: "SQLITE_IOERR",
  11: "SQLITE_CORRUPT",
  12: "SQLITE_NOTFOUND",
  13: "SQLITE_FULL",
  14: "SQLITE_CANTOPEN",
  15: "SQLITE_PROTOCOL",
  16: "SQLITE_EMPTY",
  17: "SQLITE_SCHEMA",
  18: "SQLITE_TOOBIG",
  19: "SQLITE_CONSTRAINT",
  20: "SQLITE_MISMATCH",
  21: "SQLITE_MISUSE",
  22: "SQLITE_NOLFS",
  23: "SQLITE_AUTH",
  24: "SQLITE_FORMAT",
  25: "SQLITE_RANGE",
  26: "SQLITE_NOTADB",
  27: "SQLITE_NOTICE",
  28: "SQLITE_WARNING",
};

/** The same `LibsqlError` (code = base code, extendedCode, rawCode) that `@libsql/client` throws. */
function mapSqliteError(err: unknown): unknown {
  if (err instanceof Database.SqliteError) {
    const e = err as Error & { code: string; rawCode?: number };
    return libsqlErrorOf(e.message, e.code, e.rawCode, e);
  }
  return err;
}

/** A native driver error (message, its `code`, `rawCode`) as `@libsql/client` reports it. */
export function libsqlErrorOf(
  message: string,
  extendedCode: string,
  rawCode: number | undefined,
  cause?: Error,
): LibsqlError {
  const base = rawCode === undefined ? undefined : rawCode & 0xff;
  const code = base === undefined ? "SQLITE_UNKNOWN" : (SQLITE_ERROR_CODES[base] ?? `SQLITE_UNKNOWN_${base}`);
  return new LibsqlError(message, code, extendedCode, rawCode, cause);
}

function batchError(err: unknown, index: number): unknown {
  if (err instanceof LibsqlBatchError || !(err instanceof LibsqlError)) return err;
  return new LibsqlBatchError(
    err.message,
    index,
    err.code,
    err.extendedCode,
    err.rawCode,
    err.cause instanceof Error ? err.cause : undefined,
  );
}

function normalize(stmtOrSql: InStatement | string, args?: InArgs): InStatement {
  return typeof stmtOrSql === "string" ? { sql: stmtOrSql, args: args ?? [] } : stmtOrSql;
}

function normalizeBatchItem(stmt: InStatement | [string, InArgs?]): InStatement {
  return Array.isArray(stmt) ? { sql: stmt[0], args: stmt[1] ?? [] } : stmt;
}

function beginStatement(mode: TransactionMode): string {
  switch (mode) {
    case "write":
      return "BEGIN IMMEDIATE";
    case "read":
      return "BEGIN TRANSACTION READONLY";
    case "deferred":
      return "BEGIN DEFERRED";
    default:
      throw new RangeError('Unknown transaction mode, supported values are "write", "read" and "deferred"');
  }
}

class LocalClient implements Client {
  closed = false;
  readonly protocol = "file";
  readonly #pool: ConnectionPool;
  readonly #statements: StatementCache;

  constructor(pool: ConnectionPool, statements: StatementCache) {
    this.#pool = pool;
    this.#statements = statements;
  }

  async execute(stmtOrSql: InStatement | string, args?: InArgs): Promise<ResultSet> {
    return this.#withConnection((db) => this.#statements.execute(db, normalize(stmtOrSql, args)));
  }

  async batch(stmts: (InStatement | [string, InArgs?])[], mode: TransactionMode = "deferred") {
    return this.#withConnection((db) => {
      this.#statements.execute(db, beginStatement(mode));
      const results = this.#runAll(db, stmts.map(normalizeBatchItem));
      this.#statements.execute(db, "COMMIT");
      return results;
    });
  }

  async migrate(stmts: InStatement[]): Promise<ResultSet[]> {
    return this.#withConnection((db) => {
      this.#statements.execute(db, "PRAGMA foreign_keys=off");
      try {
        this.#statements.execute(db, "BEGIN DEFERRED");
        const results = this.#runAll(db, stmts);
        this.#statements.execute(db, "COMMIT");
        return results;
      } finally {
        if (db.inTransaction) this.#statements.execute(db, "ROLLBACK");
        this.#statements.execute(db, "PRAGMA foreign_keys=on");
      }
    });
  }

  async transaction(mode: TransactionMode = "write"): Promise<Transaction> {
    this.#checkNotClosed();
    const db = await this.#pool.acquire(true);
    try {
      this.#checkUsable(db);
      this.#statements.execute(db, beginStatement(mode));
    } catch (err) {
      this.#pool.release(db);
      throw err;
    }
    return new LocalTransaction(db, this.#statements, (used) => this.#pool.release(used));
  }

  async executeMultiple(sql: string): Promise<void> {
    return this.#withConnection((db) => this.#statements.executeMultiple(db, sql));
  }

  async sync(): Promise<Replicated> {
    throw new LibsqlError("sync() is only available on embedded replicas", "SYNC_NOT_SUPPORTED");
  }

  async reconnect(): Promise<void> {
    this.#pool.reopen();
    this.closed = false;
  }

  close(): void {
    this.closed = true;
    this.#pool.close();
  }

  /** Borrows a connection for one synchronous call; `release` rolls back whatever `fn` left open. */
  async #withConnection<T>(fn: (db: Connection) => T): Promise<T> {
    this.#checkNotClosed();
    const db = await this.#pool.acquire();
    try {
      this.#checkUsable(db);
      return fn(db);
    } finally {
      this.#pool.release(db);
    }
  }

  #runAll(db: Connection, stmts: InStatement[]): ResultSet[] {
    const results: ResultSet[] = [];
    stmts.forEach((stmt, i) => {
      try {
        if (!db.inTransaction) {
          throw new LibsqlBatchError("The transaction has been rolled back", i, "TRANSACTION_CLOSED");
        }
        results.push(this.#statements.execute(db, stmt));
      } catch (err) {
        throw batchError(err, i);
      }
    });
    return results;
  }

  #checkNotClosed(): void {
    if (this.closed) throw new LibsqlError("The client is closed", "CLIENT_CLOSED");
  }

  // close()/reconnect() can land between a borrow and its use (see @libsql/client's Sqlite3Client)
  #checkUsable(db: Connection): void {
    this.#checkNotClosed();
    if (!db.open) {
      throw new LibsqlError("The connection was closed while this operation was in flight", "CLIENT_CLOSED");
    }
  }
}

class LocalTransaction implements Transaction {
  /** null once the connection went back to the pool */
  #db: Connection | null;
  readonly #statements: StatementCache;
  readonly #release: (db: Connection) => void;

  constructor(db: Connection, statements: StatementCache, release: (db: Connection) => void) {
    this.#db = db;
    this.#statements = statements;
    this.#release = release;
  }

  async execute(stmtOrSql: InStatement | string, args?: InArgs): Promise<ResultSet> {
    return this.#statements.execute(this.#open(), normalize(stmtOrSql, args));
  }

  async batch(stmts: (InStatement | [string, InArgs?])[]): Promise<ResultSet[]> {
    const results: ResultSet[] = [];
    stmts.forEach((stmt, i) => {
      try {
        results.push(this.#statements.execute(this.#open(), normalizeBatchItem(stmt)));
      } catch (err) {
        throw batchError(err, i);
      }
    });
    return results;
  }

  async executeMultiple(sql: string): Promise<void> {
    this.#statements.executeMultiple(this.#open(), sql);
  }

  async rollback(): Promise<void> {
    const db = this.#db;
    if (db === null || !db.open) {
      this.#settle();
      return;
    }
    try {
      this.#open();
      this.#statements.execute(db, "ROLLBACK");
    } finally {
      this.#settle();
    }
  }

  async commit(): Promise<void> {
    try {
      this.#statements.execute(this.#open(), "COMMIT");
    } finally {
      this.#settle();
    }
  }

  close(): void {
    const db = this.#db;
    if (db === null) return;
    try {
      // reading inTransaction on a closed connection aborts the process
      if (db.open && db.inTransaction) this.#statements.execute(db, "ROLLBACK");
    } finally {
      this.#settle();
    }
  }

  get closed(): boolean {
    const db = this.#db;
    return db === null || !db.open || !db.inTransaction;
  }

  #open(): Connection {
    if (this.closed) throw new LibsqlError("The transaction is closed", "TRANSACTION_CLOSED");
    return this.#db as Connection;
  }

  #settle(): void {
    const db = this.#db;
    if (db === null) return;
    this.#db = null;
    this.#release(db);
  }
}
