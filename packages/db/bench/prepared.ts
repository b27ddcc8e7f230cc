/**
 * drizzle's query builder (SQL built on every call) vs preparedQuery (built once), inside read units of work,
 * on the same file: a point read by primary key (`select().from(books)`), and a GetPrompt-like read (a row,
 * a LEFT JOIN'd nested selection, two correlated subselects mapped with `.mapWith`). Each is measured as one
 * query per read unit (what a read RPC does) and as many queries inside one unit (the statement alone).
 * Variants alternate over `rounds` rounds; the best round of each is printed.
 *
 *   node --conditions=source --import tsx packages/db/bench/prepared.ts [units=5000] [rounds=3]
 */
import { and, eq, type Placeholder, sql } from "drizzle-orm";
import { benchDatabase, label, loadImpl, schema } from "./common.js";

const units = Number(process.argv[2] ?? 5_000);
const rounds = Number(process.argv[3] ?? 3);
const ROWS = 1_000;
const { authors, books, reviews } = schema;

const dbModule = await loadImpl();
const { db, dispose } = await benchDatabase(dbModule);
type Tx = Parameters<Parameters<typeof db.read>[0]>[0];
type Bind<T> = T | Placeholder;

await db.write(async (tx) => {
  // the subselects look reviews up by book, as GetPrompt's look tags and labels up by primary key
  await tx.run(sql`CREATE INDEX reviews_book_idx ON reviews (book_id, rating)`);
  for (let i = 1; i <= ROWS; i++) {
    await tx.insert(authors).values({ id: i, name: `author ${i}` });
    await tx.insert(books).values({ id: i, authorId: i, title: `book ${i}`, isbn: `isbn-${i}`, pages: i });
    await tx.insert(reviews).values([
      { bookId: i, rating: 1 + (i % 5) },
      { bookId: i, rating: 1 + ((i + 2) % 5) },
    ]);
  }
});

function pointRead(tx: Tx, id: Bind<number>) {
  return tx.select().from(books).where(eq(books.id, id));
}

function viewRead(tx: Tx, id: Bind<number>, authorId: Bind<number>) {
  return tx
    .select({
      book: books,
      author: { id: authors.id, name: authors.name },
      reviewCount:
        sql<number>`(SELECT count(*) FROM ${reviews} WHERE ${reviews.bookId} = ${books.id})`.mapWith(Number),
      ratings: sql<
        number[]
      >`(SELECT json_group_array(${reviews.rating}) FROM ${reviews} WHERE ${reviews.bookId} = ${books.id})`.mapWith(
        (json: string) => JSON.parse(json) as number[],
      ),
    })
    .from(books)
    .leftJoin(authors, eq(authors.id, books.authorId))
    .where(and(eq(books.id, id), eq(books.authorId, authorId)));
}

const pointPrepared = dbModule.preparedQuery((tx: Tx) => pointRead(tx, sql.placeholder("id")));
const viewPrepared = dbModule.preparedQuery((tx: Tx) =>
  viewRead(tx, sql.placeholder("id"), sql.placeholder("authorId")),
);

type Query = (tx: Tx, i: number) => Promise<unknown>;
const variants: [string, Query, Query][] = [
  [
    "point read",
    (tx, i) => pointRead(tx, (i % ROWS) + 1).get(),
    (tx, i) => pointPrepared.with(tx, { id: (i % ROWS) + 1 }).get(),
  ],
  [
    "GetPrompt-like read",
    (tx, i) => viewRead(tx, (i % ROWS) + 1, (i % ROWS) + 1).get(),
    (tx, i) => viewPrepared.with(tx, { id: (i % ROWS) + 1, authorId: (i % ROWS) + 1 }).get(),
  ],
];

async function perUnit(query: Query, count: number): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const row = await db.read((tx) => query(tx, i));
    if (row === undefined) throw new Error("missing row");
  }
  return (count / (performance.now() - started)) * 1000;
}

async function inOneUnit(query: Query, count: number): Promise<number> {
  return db.read(async (tx) => {
    const started = performance.now();
    for (let i = 0; i < count; i++) {
      if ((await query(tx, i)) === undefined) throw new Error("missing row");
    }
    return (count / (performance.now() - started)) * 1000;
  });
}

// same rows either way
await db.read(async (tx) => {
  for (const [name, drizzleQuery, preparedCall] of variants) {
    for (const i of [0, 1, 999]) {
      const [a, b] = [await drizzleQuery(tx, i), await preparedCall(tx, i)];
      if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error(`${name}: different rows`);
    }
  }
});

const best = new Map<string, number>();
const record = (key: string, rate: number) => best.set(key, Math.max(best.get(key) ?? 0, rate));
for (const [, drizzleQuery, preparedCall] of variants) {
  await perUnit(drizzleQuery, 500); // warm-up (JIT, statement caches)
  await perUnit(preparedCall, 500);
}
for (let round = 0; round < rounds; round++) {
  for (const [name, drizzleQuery, preparedCall] of variants) {
    record(`${name}|unit|drizzle`, await perUnit(drizzleQuery, units));
    record(`${name}|unit|prepared`, await perUnit(preparedCall, units));
    record(`${name}|one|drizzle`, await inOneUnit(drizzleQuery, units));
    record(`${name}|one|prepared`, await inOneUnit(preparedCall, units));
  }
}

console.log(`${label()}: ${units} reads per measurement, best of ${rounds} alternating rounds, one caller`);
console.log("| read | drizzle builder /s | preparedQuery /s | ratio |");
console.log("| --- | ---: | ---: | ---: |");
for (const [name] of variants) {
  for (const [mode, text] of [
    ["unit", "one per read unit"],
    ["one", "in one read unit"],
  ] as const) {
    const a = best.get(`${name}|${mode}|drizzle`) ?? 0;
    const b = best.get(`${name}|${mode}|prepared`) ?? 0;
    console.log(`| ${name}, ${text} | ${Math.round(a)} | ${Math.round(b)} | ${(b / a).toFixed(2)} |`);
  }
}
await dispose();
