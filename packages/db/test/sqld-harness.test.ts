import { existsSync } from "node:fs";
import { createClient } from "@libsql/client";
import { expect, it } from "vitest";
import { describeWithSqld, startSqld, useSqld } from "../../../test/support/sqld.js";

describeWithSqld("sqld test harness", () => {
  const sqld = useSqld();

  it("serves a database on its own loopback port", async () => {
    const client = createClient({ url: sqld().url });
    try {
      await client.execute("CREATE TABLE IF NOT EXISTS harness (x)");
      await client.execute("INSERT INTO harness VALUES (1)");
      expect((await client.execute("SELECT count(*) AS n FROM harness")).rows[0]?.n).toBeGreaterThan(0);
    } finally {
      client.close();
    }
  });

  it("with auth: refuses no token and a foreign token, honours read-only and expired tokens", async () => {
    const server = await startSqld({ auth: true });
    const other = await startSqld({ auth: true });
    const clients: ReturnType<typeof createClient>[] = [];
    const client = (authToken?: string) => {
      const c = createClient({ url: server.url, authToken });
      clients.push(c);
      return c;
    };
    try {
      await client(server.authToken).execute("CREATE TABLE t (x)");
      await client(server.token({ access: "rw", expiresInSeconds: 600 })).execute("INSERT INTO t VALUES (1)");
      await expect(client().execute("SELECT 1")).rejects.toThrow(/401|Unauthorized/i);
      await expect(client(other.token()).execute("SELECT 1")).rejects.toThrow(/401|Unauthorized/i);
      const readOnly = client(server.token({ access: "ro" }));
      expect((await readOnly.execute("SELECT count(*) AS n FROM t")).rows[0]?.n).toBe(1);
      await expect(readOnly.execute("INSERT INTO t VALUES (2)")).rejects.toThrow();
      // sqld allows a minute of clock leeway
      await expect(client(server.token({ expiresInSeconds: -3_600 })).execute("SELECT 1")).rejects.toThrow(
        /401|Unauthorized/i,
      );
    } finally {
      for (const c of clients) c.close();
      await other.stop();
      await server.stop();
    }
    expect(existsSync(server.dbPath)).toBe(false);
    await expect(fetch(`${server.url}/health`)).rejects.toThrow();
  });
});
