/**
 * Read units of work per second, GetPrompt-like: each unit does 4 point reads by primary key through
 * `db.read`, 16 callers in flight, single process.
 *
 *   node --conditions=source --import tsx packages/db/bench/read-units.ts [units=20000] [callers=16]
 */
import { eq } from "drizzle-orm";
import { benchDatabase, label, loadImpl, schema } from "./common.js";

const units = Number(process.argv[2] ?? 20_000);
const callers = Number(process.argv[3] ?? 16);
const ROWS = 1_000;

const dbModule = await loadImpl();
const { db, dispose } = await benchDatabase(dbModule);
await db.write(async (tx) => {
  for (let i = 1; i <= ROWS; i++) {
    await tx.insert(schema.authors).values({ id: i, name: `author ${i}` });
    await tx.insert(schema.books).values({ id: i, authorId: i, title: `book ${i}` });
  }
});

async function unit(n: number) {
  return db.read(async (tx) => {
    const id = (n % ROWS) + 1;
    const [book] = await tx.select().from(schema.books).where(eq(schema.books.id, id));
    const [author] = await tx.select().from(schema.authors).where(eq(schema.authors.id, id));
    const [next] = await tx
      .select()
      .from(schema.books)
      .where(eq(schema.books.id, (id % ROWS) + 1));
    const [prev] = await tx
      .select()
      .from(schema.authors)
      .where(eq(schema.authors.id, ((id + 1) % ROWS) + 1));
    if (!book || !author || !next || !prev) throw new Error("missing row");
  });
}

async function run(count: number) {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (next < count) await unit(next++);
    }),
  );
  return (count / (performance.now() - started)) * 1000;
}

await run(2_000); // warm-up (statement caches, JIT)
const rate = await run(units);
console.log(
  `${label()}: ${units} read units x 4 point reads, ${callers} callers: ${Math.round(rate)} units/s`,
);
await dispose();
