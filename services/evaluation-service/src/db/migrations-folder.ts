import { fileURLToPath } from "node:url";

/**
 * drizzle-kit's output folder, resolved from this module: `src/db/` when run from sources (tests) and
 * `dist/db/` after a build both resolve to the package's `src/db/migrations`, so the build copies nothing.
 */
export const migrationsFolder = fileURLToPath(new URL("../../src/db/migrations", import.meta.url));
