import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { parseDatabaseUrl } from "../src/engine.js";

describe("parseDatabaseUrl", () => {
  it("names the engine of each URL form, with the local file's absolute path", () => {
    expect(parseDatabaseUrl("file:data/a.db", undefined)).toEqual({
      mode: "file",
      path: resolve("data/a.db"),
    });
    expect(parseDatabaseUrl("file:///tmp/a.db?mode=rwc", undefined)).toEqual({
      mode: "file",
      path: "/tmp/a.db",
    });
    expect(parseDatabaseUrl("file://localhost/tmp/a%20b.db", undefined)).toEqual({
      mode: "file",
      path: "/tmp/a b.db",
    });
    expect(parseDatabaseUrl("FILE:/tmp/r.db", "http://127.0.0.1:8080")).toEqual({
      mode: "replica",
      path: "/tmp/r.db",
    });
    for (const url of ["libsql://db.example.turso.io", "http://127.0.0.1:8080", "https://db.example"]) {
      expect(parseDatabaseUrl(url, undefined)).toEqual({ mode: "remote" });
    }
  });

  it("refuses in-memory databases, unknown schemes and a replica without a local file", () => {
    expect(() => parseDatabaseUrl("file::memory:", undefined)).toThrow(/in-memory/);
    expect(() => parseDatabaseUrl("file:", undefined)).toThrow(/in-memory/);
    expect(() => parseDatabaseUrl("ws://127.0.0.1", undefined)).toThrow(
      /unsupported database URL scheme "ws:"/,
    );
    expect(() => parseDatabaseUrl("/tmp/a.db", undefined)).toThrow(/unsupported/);
    expect(() => parseDatabaseUrl("http://127.0.0.1:8080", "http://127.0.0.1:8081")).toThrow(
      /needs a file: url/,
    );
  });
});
