import type { InValue } from "@libsql/client";
import { DrizzleQueryError, fillPlaceholders, is, type Query, QueryPromise } from "drizzle-orm";
import { LibSQLPreparedQuery } from "drizzle-orm/libsql";
import type { PreparedQueryConfig, SQLitePreparedQuery } from "drizzle-orm/sqlite-core";
import { unitTransaction } from "./unit-transaction.js";

/**
 * Fixed-shape queries whose SQL is built once per process.
 *
 * drizzle renders a query builder to SQL text on every call (walking every chunk, with an `is()` check each);
 * for a point read that costs more than executing the statement, whose prepared form the connection already
 * keeps (local-client.ts). drizzle's own `.prepare()` renders once, but the prepared query it returns belongs
 * to the session it was built on: a unit of work's `tx` lives for one unit only, so it cannot be kept.
 *
 * `preparedQuery(build)` calls `build` once — the first time it runs inside a unit of work — with
 * `sql.placeholder("name")` where the values go, and keeps drizzle's prepared query: its SQL text and
 * parameter list, and its row mapping (`mapAllResult` / `mapGetResult`: the selected fields with their
 * decoders — `mode: "json"`, `mode: "boolean"`, blobs as Buffers, `.mapWith(...)`, custom types —, nested
 * selections, joined tables that come back all-NULL as `null`, relational queries' mapper). Each call then
 * fills the placeholders (drizzle's `fillPlaceholders`), runs the statement on the calling unit's libSQL
 * transaction and maps the rows with that same prepared query. Outside a unit of work (the tooling
 * `drizzle()` handle, a nested `tx.transaction()`), it is drizzle's query built on the handle it was given.
 *
 * Placeholder values are bound as given, as with drizzle's `.prepare()`: `eq(column, sql.placeholder("x"))`
 * does not run the column's `mapToDriverValue`, so pass driver values (text, numbers, 1/0 for a boolean
 * column). Errors of the statement reach the caller as drizzle's `DrizzleQueryError` with the libSQL error as
 * its `cause`, as from the query builder.
 *
 * ```ts
 * const byId = preparedQuery((db: Queryable) =>
 *   db.select().from(items).where(and(eq(items.id, sql.placeholder("id")), eq(items.ownerId, sql.placeholder("ownerId")))),
 * );
 * const row = await byId.with(tx, { id, ownerId }).get(); // or .all(), or `await byId.with(...)` (= all)
 * ```
 */
export function preparedQuery<TDb extends object, TConfig extends PreparedQueryConfig>(
  build: (db: TDb) => Preparable<TConfig>,
): PreparedQuery<TDb, TConfig["all"], TConfig["get"]> {
  let prepared: LibSQLPreparedQuery<PreparedQueryConfig & { type: "async" }> | undefined;

  function unitQuery(db: TDb): LibSQLPreparedQuery<PreparedQueryConfig & { type: "async" }> {
    if (prepared === undefined) {
      const query = build(db).prepare();
      if (!is(query, LibSQLPreparedQuery)) {
        throw new TypeError("preparedQuery: the query was not built on a libSQL drizzle handle");
      }
      prepared = query as LibSQLPreparedQuery<PreparedQueryConfig & { type: "async" }>;
    }
    return prepared;
  }

  async function run(db: TDb, values: PlaceholderValues, method: "all" | "get"): Promise<unknown> {
    const transaction = unitTransaction(db);
    if (transaction === undefined) {
      const query = build(db).prepare();
      return method === "all" ? query.all(values) : query.get(values);
    }
    const query = unitQuery(db);
    const { sql, params } = query.getQuery();
    const args = fillPlaceholders(params, values) as InValue[];
    let rows: unknown;
    try {
      ({ rows } = await transaction.execute({ sql, args }));
    } catch (err) {
      // what drizzle's prepared query throws (without a query cache, as in createDatabase)
      throw new DrizzleQueryError(sql, args, err as Error);
    }
    return method === "all" ? query.mapAllResult(rows) : query.mapGetResult(rows);
  }

  return {
    with: (db, values) =>
      new BoundQuery(
        () => run(db, values, "all") as Promise<TConfig["all"]>,
        () => run(db, values, "get") as Promise<TConfig["get"]>,
        () => {
          const { sql, params } = (prepared ?? build(db).prepare()).getQuery();
          return { sql, params: fillPlaceholders(params, values) };
        },
      ),
  };
}

/** A drizzle query that can be prepared: a select, a relational `tx.query.<table>.findFirst/findMany`. */
export interface Preparable<TConfig extends PreparedQueryConfig> {
  prepare(): SQLitePreparedQuery<TConfig>;
}

/** The value of every `sql.placeholder(name)` of the query, by name. */
export type PlaceholderValues = Record<string, unknown>;

export interface PreparedQuery<TDb, TAll, TGet> {
  /** The query with these placeholder values, on `db` (a unit of work's `tx`, or any drizzle handle). */
  with(db: TDb, values: PlaceholderValues): BoundQuery<TAll, TGet>;
}

/**
 * One execution-to-be, like a drizzle query builder: `await` it (or `.all()`) for all rows, `.get()` for the
 * first row or undefined; `.toSQL()` gives the statement and its bound values without running it.
 */
export class BoundQuery<TAll, TGet> extends QueryPromise<TAll> {
  constructor(
    private readonly runAll: () => Promise<TAll>,
    private readonly runGet: () => Promise<TGet>,
    private readonly render: () => Query,
  ) {
    super();
  }

  override execute(): Promise<TAll> {
    return this.runAll();
  }

  all(): Promise<TAll> {
    return this.runAll();
  }

  get(): Promise<TGet> {
    return this.runGet();
  }

  toSQL(): Query {
    return this.render();
  }
}
