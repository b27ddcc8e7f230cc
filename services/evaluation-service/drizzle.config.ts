import { defineConfig } from "drizzle-kit";

// `npm run db:generate -w services/evaluation-service` (NODE_OPTIONS=--conditions=source lets drizzle-kit load the
// workspace kits from their TypeScript sources). Every generated migration needs a hand-written <tag>.down.sql.
export default defineConfig({
  dialect: "sqlite",
  schema: "./src/db/schema.ts",
  out: "./src/db/migrations",
  strict: true,
  verbose: true,
});
