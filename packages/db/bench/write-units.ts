/**
 * Write units of work per second: N concurrent writers, each doing M units of one-row insert + one audit
 * row (appendAudit), single process. Verifies the counts and the audit chain at the end.
 *
 *   node --conditions=source --import tsx packages/db/bench/write-units.ts [writers=50] [unitsPerWriter=200]
 */
import { sql } from "drizzle-orm";
import { benchDatabase, label, loadImpl, schema } from "./common.js";

const writers = Number(process.argv[2] ?? 50);
const perWriter = Number(process.argv[3] ?? 200);

const dbModule = await loadImpl();
const { db, dispose } = await benchDatabase(dbModule);

let retries = 0;
async function writer(w: number, count: number, offset: number) {
  for (let i = 0; i < count; i++) {
    await db.write(
      async (tx) => {
        const [row] = await tx
          .insert(schema.authors)
          .values({ name: `writer ${w} unit ${offset + i}` })
          .returning();
        await dbModule.appendAudit(tx, {
          actor: `writer-${w}`,
          action: "CreateAuthor",
          resourceType: "author",
          resourceId: String(row?.id),
          after: row,
        });
      },
      { onRetry: () => retries++ },
    );
  }
}

async function run(count: number, offset: number) {
  const started = performance.now();
  await Promise.all(Array.from({ length: writers }, (_, w) => writer(w, count, offset)));
  return ((writers * count) / (performance.now() - started)) * 1000;
}

await run(10, 0); // warm-up
const rate = await run(perWriter, 10);
const total = writers * (perWriter + 10);
const counts = await db.read(async (tx) => ({
  authors: Number((await tx.get<{ n: number }>(sql`SELECT count(*) AS n FROM authors`))?.n),
  audit: Number((await tx.get<{ n: number }>(sql`SELECT count(*) AS n FROM audit_log`))?.n),
}));
const chain = await dbModule.verifyAuditChain(db);
if (counts.authors !== total || counts.audit !== total || !chain.ok) {
  throw new Error(`inconsistent result: ${JSON.stringify({ counts, total, chain })}`);
}
console.log(
  `${label()}: ${writers} writers x ${perWriter} units (insert + audit row): ${Math.round(rate)} units/s, ${retries} retries`,
);
await dispose();
