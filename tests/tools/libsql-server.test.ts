// The local libSQL server (tools/libsql-server) exercised through the real clients:
// @libsql/client (http and web entry points), drizzle-orm/libsql and its migrator, plus raw
// Hrana-over-HTTP requests for the protocol edges.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createClient as createHttpClient, type Client } from "@libsql/client/http";
import { createClient as createWebClient } from "@libsql/client/web";
import { eq, sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/libsql";
import { migrate } from "drizzle-orm/libsql/migrator";
import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import Database from "libsql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { splitSql, startServer } from "../../tools/libsql-server/server.mjs";

type Server = Awaited<ReturnType<typeof startServer>>;

const cliPath = fileURLToPath(new URL("../../tools/libsql-server/cli.mjs", import.meta.url));
const tempDirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "libsql-server-test-"));
  tempDirs.push(dir);
  return dir;
}

let server: Server;
const clients: Client[] = [];
/** URL of an isolated database on the shared server. */
const dbUrl = (name: string) => `${server.url}/db/${name}/`;
function track<T extends Client>(client: T): T {
  clients.push(client);
  return client;
}
const httpClient = (name: string, intMode: "number" | "bigint" | "string" = "number") =>
  track(createHttpClient({ url: dbUrl(name), intMode }));
const webClient = (name: string, intMode: "number" | "bigint" | "string" = "number") =>
  track(createWebClient({ url: dbUrl(name), intMode }));

beforeAll(async () => {
  server = await startServer({ port: 0, memory: true });
});
afterAll(async () => {
  for (const c of clients) c.close();
  await server?.close();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

/** POST a raw pipeline body; returns the HTTP status and the parsed JSON answer. */
async function pipeline(path: string, body: unknown, init: RequestInit = {}) {
  const res = await fetch(`${server.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(init.headers ?? {}) },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, contentType: res.headers.get("content-type"), json };
}

const errorCode = (e: any): string | undefined => e?.code ?? e?.cause?.code;

async function captureError(promise: Promise<unknown>): Promise<any> {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new Error("expected the promise to reject");
}

describe("SQL scanning", () => {
  it("splits statements and finds parameters like SQLite's tokenizer", () => {
    const parts = splitSql(
      "SELECT ';' AS a; -- comment; still a comment\n/* ; */ SELECT \"x;y\" FROM [a;b];" +
        " CREATE TEMP TRIGGER t AFTER INSERT ON x BEGIN SELECT CASE WHEN 1 THEN 2 END; UPDATE x SET a = 1; END; ;;" +
        " SELECT x'3b', `c;d` FROM t",
    );
    expect(parts.map((p) => p.words.slice(0, 3))).toEqual([
      ["SELECT", "AS", "A"],
      ["SELECT", "FROM"],
      ["CREATE", "TEMP", "TRIGGER"],
      ["SELECT", "X", "FROM"],
    ]);
    expect(parts[2]!.sql.endsWith("END;")).toBe(true);
    expect(splitSql("  -- only a comment\n ; /* and another */ ")).toEqual([]);
    const [stmt] = splitSql("SELECT ?, ?3, :a, @b, $c::d(e), :a, #f, ':no', \"?\" -- :z\n/* @y */");
    expect(stmt!.vars).toEqual(["?", "?3", ":a", "@b", "$c::d(e)", ":a", "#f"]);
  });
});

describe("HTTP endpoints", () => {
  it("answers version probes like sqld (no protobuf)", async () => {
    expect((await fetch(`${server.url}/v2`)).status).toBe(200);
    expect((await fetch(`${server.url}/v3`)).status).toBe(200);
    expect((await fetch(`${server.url}/v3-protobuf`)).status).toBe(404);
    const proto = await fetch(`${server.url}/v3-protobuf/pipeline`, { method: "POST", body: "x" });
    expect(proto.status).toBe(404);
    expect((await fetch(`${dbUrl("probe")}v3-protobuf`)).status).toBe(404);
    expect((await fetch(`${dbUrl("probe")}v2`)).status).toBe(200);
    const health = await fetch(`${server.url}/health`);
    expect(health.status).toBe(200);
    expect(await health.text()).toBe("ok");
    const version = await fetch(`${server.url}/version`);
    expect(version.status).toBe(200);
    expect((await version.text()).length).toBeGreaterThan(0);
    expect((await fetch(`${server.url}/nope`)).status).toBe(404);
    expect((await fetch(`${server.url}/db/missing-slash`)).status).toBe(404);
    expect((await fetch(`${server.url}/db/bad!name/v2`)).status).toBe(400);
    expect((await fetch(`${server.url}/v2/pipeline`)).status).toBe(405);
  });
});

describe("@libsql/client", () => {
  it("executes statements through both the http and the web client", async () => {
    for (const [name, make] of [["exec-http", httpClient], ["exec-web", webClient]] as const) {
      const c = make(name);
      await c.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL)");
      const ins = await c.execute({ sql: "INSERT INTO t (name) VALUES (?)", args: ["ann"] });
      expect(ins.rowsAffected).toBe(1);
      expect(ins.lastInsertRowid).toBe(1n);
      const upd = await c.execute("UPDATE t SET name = upper(name)");
      expect(upd.rowsAffected).toBe(1);
      expect(upd.lastInsertRowid).toBeUndefined();
      const rs = await c.execute("SELECT id, name, 1 + 1 AS two FROM t");
      expect(rs.columns).toEqual(["id", "name", "two"]);
      expect(rs.columnTypes).toEqual(["INTEGER", "TEXT", ""]);
      expect(rs.rows.length).toBe(1);
      expect(rs.rows[0]).toMatchObject({ id: 1, name: "ANN", two: 2 });
      expect(rs.rowsAffected).toBe(0);
      const ret = await c.execute({ sql: "INSERT INTO t (name) VALUES (?), (?) RETURNING id, name", args: ["b", "c"] });
      expect(ret.rows.map((r) => r.name)).toEqual(["b", "c"]);
      expect(ret.rowsAffected).toBe(2);
      // the RETURNING insert is committed and visible to another stream
      expect((await c.execute("SELECT count(*) AS n FROM t")).rows[0]!.n).toBe(3);
    }
  });

  it("round-trips every value type, including 64-bit integers", async () => {
    const c = httpClient("values", "bigint");
    await c.execute("CREATE TABLE v (i INTEGER, r REAL, t TEXT, b BLOB, n ANY)");
    const rows: [bigint, number, string, Uint8Array | ArrayBuffer, null][] = [
      [9223372036854775807n, 1.5, "héllo wörld 🌍 中文 ✓", new Uint8Array([0, 1, 2, 254, 255]), null],
      [-9223372036854775808n, -0.25, "", new Uint8Array(0), null],
      [9007199254740993n, 1e300, "x", new Uint8Array([9, 8, 7]).buffer, null],
      [0n, 2, "'quoted' \"double\"", new ArrayBuffer(0), null],
    ];
    for (const args of rows) await c.execute({ sql: "INSERT INTO v VALUES (?, ?, ?, ?, ?)", args });
    const rs = await c.execute(
      "SELECT i, r, t, b, n, typeof(i) AS ti, typeof(r) AS tr, typeof(t) AS tt, typeof(b) AS tb, typeof(n) AS tn FROM v ORDER BY rowid",
    );
    expect(rs.rows.length).toBe(4);
    rows.forEach((expected, k) => {
      const row = rs.rows[k]!;
      expect(row.i).toBe(expected[0]);
      expect(row.r).toBe(expected[1]);
      expect(row.t).toBe(expected[2]);
      const blob = expected[3] instanceof ArrayBuffer ? new Uint8Array(expected[3]) : expected[3];
      expect(row.b).toBeInstanceOf(ArrayBuffer);
      expect([...new Uint8Array(row.b as ArrayBuffer)]).toEqual([...blob]);
      expect(row.n).toBeNull();
      expect([row.ti, row.tr, row.tt, row.tb, row.tn]).toEqual(["integer", "real", "text", "blob", "null"]);
    });

    // the same data read with intMode "string", through the web client
    const s = webClient("values", "string");
    const str = await s.execute("SELECT i FROM v ORDER BY rowid");
    expect(str.rows.map((r) => r.i)).toEqual(["9223372036854775807", "-9223372036854775808", "9007199254740993", "0"]);
    const lit = await s.execute("SELECT 9223372036854775807 AS max, -9223372036854775808 AS min, 0.1 + 0.2 AS f, NULL AS z");
    expect(lit.rows[0]).toMatchObject({ max: "9223372036854775807", min: "-9223372036854775808", f: 0.1 + 0.2, z: null });

    // intMode "number" with safe integers; booleans and bigint arguments
    const num = httpClient("values");
    const small = await num.execute({ sql: "SELECT ? AS a, ? AS b, ? AS c, typeof(?) AS d", args: [42n, true, false, 7] });
    expect(small.rows[0]).toMatchObject({ a: 42, b: 1, c: 0, d: "real" });
    const bigErr = await captureError(num.execute("SELECT 9223372036854775807"));
    expect(bigErr).toBeInstanceOf(RangeError);
  });

  it("binds positional and named arguments", async () => {
    const c = httpClient("args");
    const named = await c.execute({ sql: "SELECT :a AS a, @b AS b, $c AS c", args: { a: 1, b: "two", c: null } });
    expect(named.rows[0]).toMatchObject({ a: 1, b: "two", c: null });
    const prefixed = await c.execute({ sql: "SELECT :a AS a, @b AS b, $c AS c", args: { ":a": "x", "@b": "y", $c: "z" } });
    expect(prefixed.rows[0]).toMatchObject({ a: "x", b: "y", c: "z" });
    const repeated = await c.execute({ sql: "SELECT :x || '-' || :x AS twice", args: { x: "ab" } });
    expect(repeated.rows[0]!.twice).toBe("ab-ab");
    const positional = await c.execute({ sql: "SELECT ? AS p1, ? AS p2", args: [1, "x"] });
    expect(positional.rows[0]).toMatchObject({ p1: 1, p2: "x" });
    const numbered = await c.execute({ sql: "SELECT ?2 AS second, ?1 AS first", args: ["one", "two"] });
    expect(numbered.rows[0]).toMatchObject({ second: "two", first: "one" });
    const tuple = await c.execute("SELECT ? AS v", ["tuple form"]);
    expect(tuple.rows[0]!.v).toBe("tuple form");
    const inWhere = await c.execute({ sql: "SELECT value FROM json_each(:list) WHERE value > :min ORDER BY value", args: { list: "[1,5,9]", min: 4 } });
    expect(inWhere.rows.map((r) => r.value)).toEqual([5, 9]);
    const missing = await captureError(c.execute({ sql: "SELECT :a, :b", args: { a: 1 } }));
    expect(errorCode(missing)).toBe("ARGS_INVALID");
    // a parameter-looking text inside a string literal is not a parameter
    const literal = await c.execute({ sql: "SELECT ':nope' AS s, ? AS v", args: [3] });
    expect(literal.rows[0]).toMatchObject({ s: ":nope", v: 3 });
  });

  it("runs batches in every transaction mode and rolls the whole batch back on failure", async () => {
    const c = httpClient("batch");
    await c.execute("CREATE TABLE b (id INTEGER PRIMARY KEY, v TEXT UNIQUE)");
    const count = async () => (await c.execute("SELECT count(*) AS n FROM b")).rows[0]!.n;

    for (const mode of ["write", "deferred"] as const) {
      const ok = await c.batch(
        [
          { sql: "INSERT INTO b (v) VALUES (?)", args: [`${mode}-1`] },
          { sql: "INSERT INTO b (v) VALUES (:v)", args: { v: `${mode}-2` } },
          "SELECT v FROM b ORDER BY id",
        ],
        mode,
      );
      expect(ok.length).toBe(3);
      expect(ok[0]!.rowsAffected).toBe(1);
      expect(ok[2]!.rows.map((r) => r.v)).toContain(`${mode}-2`);
      const before = await count();
      const failed = await captureError(
        c.batch(
          [
            { sql: "INSERT INTO b (v) VALUES (?)", args: [`${mode}-3`] },
            { sql: "INSERT INTO b (v) VALUES (?)", args: [`${mode}-1`] }, // duplicate
            { sql: "INSERT INTO b (v) VALUES (?)", args: [`${mode}-4`] },
          ],
          mode,
        ),
      );
      expect(errorCode(failed)).toMatch(/^SQLITE_CONSTRAINT/);
      expect(await count()).toBe(before);
    }

    const read = await c.batch(["SELECT count(*) AS n FROM b", "SELECT max(id) AS m FROM b"], "read");
    expect(read[0]!.rows[0]!.n).toBe(4);
    const readFail = await captureError(c.batch(["SELECT 1", "SELECT * FROM no_such_table"], "read"));
    expect(errorCode(readFail)).toBe("SQLITE_UNKNOWN"); // sqld's name for SQLITE_ERROR
    const readWrite = await captureError(c.batch([{ sql: "INSERT INTO b (v) VALUES (?)", args: ["read-mode"] }], "read"));
    expect(errorCode(readWrite)).toBe("SQLITE_READONLY");
    expect(await count()).toBe(4);

    // the client's default mode is "deferred"
    await c.batch([{ sql: "INSERT INTO b (v) VALUES (?)", args: ["default"] }]);
    expect(await count()).toBe(5);
  });

  it("keeps an interactive transaction across HTTP requests (commit and rollback)", async () => {
    const a = httpClient("tx");
    const b = webClient("tx");
    await a.execute("CREATE TABLE tx (v TEXT)");
    const countFromB = async () => (await b.execute("SELECT count(*) AS n FROM tx")).rows[0]!.n;

    const tx = await a.transaction("write");
    await tx.execute("INSERT INTO tx VALUES ('one')");
    await tx.execute({ sql: "INSERT INTO tx VALUES (?)", args: ["two"] });
    await tx.batch([{ sql: "INSERT INTO tx VALUES (?)", args: ["three"] }, "SELECT 1"]);
    expect((await tx.execute("SELECT count(*) AS n FROM tx")).rows[0]!.n).toBe(3);
    expect(await countFromB()).toBe(0); // not visible before the commit
    await tx.commit();
    expect(await countFromB()).toBe(3);

    const tx2 = await a.transaction("write");
    await tx2.execute("INSERT INTO tx VALUES ('rolled back')");
    expect(await countFromB()).toBe(3);
    await tx2.rollback();
    expect(await countFromB()).toBe(3);

    const tx3 = await a.transaction("deferred");
    expect((await tx3.execute("SELECT count(*) AS n FROM tx")).rows[0]!.n).toBe(3);
    await tx3.execute("DELETE FROM tx WHERE v = 'one'");
    await tx3.commit();
    expect(await countFromB()).toBe(2);

    const tx4 = await a.transaction("read");
    expect((await tx4.execute("SELECT count(*) AS n FROM tx")).rows[0]!.n).toBe(2);
    expect(errorCode(await captureError(tx4.execute("DELETE FROM tx")))).toBe("SQLITE_READONLY");
    await tx4.rollback();
    expect(await countFromB()).toBe(2);
  });

  it("makes a second writer wait (asynchronously) until the first transaction commits", async () => {
    const a = httpClient("two-writers");
    const b = httpClient("two-writers");
    await a.execute("CREATE TABLE w (v TEXT)");
    const tx1 = await a.transaction("write");
    await tx1.execute("INSERT INTO w VALUES ('first')");
    const tx2 = await b.transaction("write");
    let secondDone = false;
    const second = tx2.execute("INSERT INTO w VALUES ('second')").then((r) => {
      secondDone = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(secondDone).toBe(false);
    expect((await fetch(`${server.url}/health`)).status).toBe(200); // the event loop is free
    await tx1.commit();
    await second;
    await tx2.commit();
    expect((await a.execute("SELECT v FROM w ORDER BY rowid")).rows.map((r) => r.v)).toEqual(["first", "second"]);
  });

  it("handles many concurrent requests", async () => {
    const c = httpClient("concurrent");
    await c.execute("CREATE TABLE c (n INTEGER)");
    await Promise.all(Array.from({ length: 40 }, (_, n) => c.execute({ sql: "INSERT INTO c VALUES (?)", args: [n] })));
    expect((await c.execute("SELECT count(*) AS n, sum(n) AS s FROM c")).rows[0]).toMatchObject({ n: 40, s: 780 });
  });

  it("supports migrate() and executeMultiple()", async () => {
    const c = httpClient("migrate");
    await c.executeMultiple(`
      CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT);
      -- a comment; with a semicolon
      CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES parent(id));
      INSERT INTO parent (id, name) VALUES (1, 'semi;colon');
      CREATE TRIGGER parent_name AFTER INSERT ON parent BEGIN
        UPDATE parent SET name = CASE WHEN new.name IS NULL THEN 'unnamed' ELSE new.name END WHERE id = new.id;
      END;
      INSERT INTO child (parent_id) VALUES (1);
    `);
    expect((await c.execute("SELECT name FROM parent")).rows[0]!.name).toBe("semi;colon");
    await c.execute("INSERT INTO parent (id) VALUES (2)");
    expect((await c.execute("SELECT name FROM parent WHERE id = 2")).rows[0]!.name).toBe("unnamed");

    // foreign keys are enforced (as on Turso), and migrate() switches them off while it runs
    const fkError = await captureError(c.execute("INSERT INTO child (parent_id) VALUES (99)"));
    expect(errorCode(fkError)).toBe("SQLITE_CONSTRAINT");
    expect(fkError.message).toMatch(/FOREIGN KEY constraint failed/);
    const results = await c.migrate([
      "CREATE TABLE parent_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL DEFAULT '')",
      "INSERT INTO parent_new (id, name) SELECT id, coalesce(name, '') FROM parent",
      "DROP TABLE parent",
      "ALTER TABLE parent_new RENAME TO parent",
      { sql: "INSERT INTO parent (id, name) VALUES (?, ?)", args: [3, "three"] },
    ]);
    expect(results.length).toBe(5);
    expect((await c.execute("SELECT count(*) AS n FROM parent")).rows[0]!.n).toBe(3);
    expect((await c.execute("PRAGMA foreign_keys")).rows[0]!.foreign_keys).toBe(1);

    const failing = await captureError(c.executeMultiple("INSERT INTO parent (id, name) VALUES (10, 'x'); INSERT INTO nope VALUES (1);"));
    expect(errorCode(failing)).toBe("SQLITE_UNKNOWN");
  });

  it("reports SQL errors with sqld's codes and keeps serving", async () => {
    const c = httpClient("errors");
    await c.execute("CREATE TABLE e (id INTEGER PRIMARY KEY, v TEXT UNIQUE, nn TEXT NOT NULL DEFAULT 'x')");
    await c.execute("INSERT INTO e (id, v) VALUES (1, 'a')");
    const syntax = await captureError(c.execute("SELEC 1"));
    expect(syntax.code).toBe("SQL_PARSE_ERROR");
    expect(syntax.message).toMatch(/syntax error/);
    const unique = await captureError(c.execute({ sql: "INSERT INTO e (v) VALUES (?)", args: ["a"] }));
    expect(unique.code).toBe("SQLITE_CONSTRAINT");
    expect(unique.message).toMatch(/UNIQUE constraint failed: e\.v/);
    const pk = await captureError(c.execute("INSERT INTO e (id, v) VALUES (1, 'b')"));
    expect(pk.code).toBe("SQLITE_CONSTRAINT");
    expect(pk.message).toMatch(/UNIQUE constraint failed: e\.id/);
    const notNull = await captureError(c.execute("INSERT INTO e (v, nn) VALUES ('c', NULL)"));
    expect(notNull.code).toBe("SQLITE_CONSTRAINT");
    expect(notNull.message).toMatch(/NOT NULL constraint failed: e\.nn/);
    expect((await captureError(c.execute("SELECT * FROM missing"))).message).toMatch(/no such table/);
    expect((await captureError(c.execute("SELECT 1; SELECT 2"))).code).toBe("SQL_MANY_STATEMENTS");
    expect((await captureError(c.execute("  -- nothing here"))).code).toBe("SQL_NO_STATEMENT");
    // statements whose EXPLAIN output is not valid UTF-8 (which would abort the libsql module)
    const blob = await c.execute("SELECT x'ff00fe' AS b, hex(x'ff') AS h");
    expect([...new Uint8Array(blob.rows[0]!.b as ArrayBuffer)]).toEqual([255, 0, 254]);
    expect((await c.execute("PRAGMA integrity_check")).rows[0]!.integrity_check).toBe("ok");
    expect((await c.execute({ sql: "SELECT ? AS p, x'ff' AS q", args: [1] })).rows[0]!.p).toBe(1);
    expect((await c.execute("SELECT count(*) AS n FROM e")).rows[0]!.n).toBe(1);
  });
});

// What sqld (Turso) answers, verified in tursodatabase/libsql's libsql-server sources:
// - src/hrana/proto.rs: a Hrana `Error` is `{ message, code }` only; Hrana 3 (docs/HRANA_3_SPEC.md)
//   has no extended-code field.
// - src/hrana/stmt.rs (`proto_error_from_stmt_error`, `sqlite_error_code`): an SQLite failure is
//   `"SQLite error: <sqlite3_errmsg>"` with the *primary* code through rusqlite's ErrorCode, whose
//   `Error::new` has no variant for SQLITE_ERROR (1), so that one is "SQLITE_UNKNOWN" (also seen in
//   libsql/sqlalchemy-libsql#3: "SQLITE_UNKNOWN: SQLite error: no such table"). The extended code
//   sqld reads (`RusqliteErrorExtended`) only goes to its replication RPC, not to Hrana.
// - src/query_analysis.rs + stmt.rs `proto_stmt_to_query`: sqld parses SQL itself first, a syntax
//   error is "SQL_PARSE_ERROR" ("SQL string could not be parsed: ...", as in drizzle-orm#3252), and
//   src/hrana/batch.rs `proto_batch_to_program` / `proto_sequence_to_program` parse every statement
//   before running any, so such an error fails the whole batch or sequence request.
// - src/hrana/http/mod.rs `handle_cursor`: the same error on /v3/cursor fails the HTTP request
//   (src/error.rs: 500, `{"error": ...}`) and drops the stream (stream.rs: Guard not released).
// On the client side (@libsql/client 0.15.15, core/api.js + hrana.js `mapHranaError`) a Hrana error
// becomes `LibsqlError(message, code, rawCode = undefined)`: `code` is the Hrana `code`, there is
// no `extendedCode` property, and `rawCode` stays undefined over HTTP (only the local sqlite3 driver
// sets it). So the extended reason (UNIQUE, NOT NULL, ...) is only in the message, on Turso as here.
describe("errors as sqld reports them", () => {
  const shape = (e: any) => ({ name: e?.name, code: e?.code, extendedCode: e?.extendedCode, rawCode: e?.rawCode });
  const libsqlError = (code: string) => ({ name: "LibsqlError", code, extendedCode: undefined, rawCode: undefined });

  async function schema(c: Client) {
    await c.executeMultiple(`
      CREATE TABLE parent (id INTEGER PRIMARY KEY);
      CREATE TABLE t (
        id INTEGER PRIMARY KEY, v TEXT UNIQUE, nn TEXT NOT NULL DEFAULT 'x',
        n INTEGER CHECK (n > 0), parent_id INTEGER REFERENCES parent(id)
      );
      INSERT INTO parent (id) VALUES (1);
      INSERT INTO t (id, v) VALUES (1, 'taken');
    `);
  }

  const violations = [
    { what: "UNIQUE", sql: "INSERT INTO t (v) VALUES ('taken')", message: "SQLite error: UNIQUE constraint failed: t.v" },
    { what: "PRIMARY KEY", sql: "INSERT INTO t (id) VALUES (1)", message: "SQLite error: UNIQUE constraint failed: t.id" },
    { what: "NOT NULL", sql: "INSERT INTO t (nn) VALUES (NULL)", message: "SQLite error: NOT NULL constraint failed: t.nn" },
    { what: "CHECK", sql: "INSERT INTO t (n) VALUES (0)", message: "SQLite error: CHECK constraint failed: n > 0" },
    { what: "FOREIGN KEY", sql: "INSERT INTO t (parent_id) VALUES (99)", message: "SQLite error: FOREIGN KEY constraint failed" },
  ];

  for (const [kind, make] of [["http", httpClient], ["web", webClient]] as const) {
    it(`gives the ${kind} client sqld's code and message in execute, batch and transactions`, async () => {
      const c = make(`sqld-errors-${kind}`);
      await schema(c);
      for (const { sql, message } of violations) {
        const viaExecute = await captureError(c.execute(sql));
        expect(shape(viaExecute)).toEqual(libsqlError("SQLITE_CONSTRAINT"));
        expect(viaExecute.message).toBe(`SQLITE_CONSTRAINT: ${message}`);
        const viaBatch = await captureError(c.batch(["INSERT INTO t (v) VALUES ('rolled back')", sql], "write"));
        expect(shape(viaBatch)).toEqual(libsqlError("SQLITE_CONSTRAINT"));
        expect(viaBatch.message).toBe(`SQLITE_CONSTRAINT: ${message}`);
      }

      const syntax = await captureError(c.execute("SELEC 1"));
      expect(shape(syntax)).toEqual(libsqlError("SQL_PARSE_ERROR"));
      expect(syntax.message).toBe('SQL_PARSE_ERROR: SQL string could not be parsed: near "SELEC": syntax error');
      const noTable = await captureError(c.execute("SELECT * FROM missing"));
      expect(shape(noTable)).toEqual(libsqlError("SQLITE_UNKNOWN"));
      expect(noTable.message).toBe("SQLITE_UNKNOWN: SQLite error: no such table: missing");

      // a statement that does not parse fails the whole batch before anything runs
      const batchSyntax = await captureError(c.batch(["INSERT INTO t (v) VALUES ('never')", "SELEC 1"], "write"));
      expect(shape(batchSyntax)).toEqual(libsqlError("SQL_PARSE_ERROR"));
      const sequence = await captureError(c.executeMultiple("INSERT INTO t (v) VALUES ('never'); SELEC 1;"));
      expect(shape(sequence)).toEqual(libsqlError("SQL_PARSE_ERROR"));
      expect((await c.execute("SELECT v FROM t ORDER BY id")).rows.map((r) => r.v)).toEqual(["taken"]);

      // interactive transaction: a failed statement leaves the transaction open
      const tx = await c.transaction("write");
      await tx.execute("INSERT INTO t (v) VALUES ('in tx')");
      const inTx = await captureError(tx.execute("INSERT INTO t (v) VALUES ('taken')"));
      expect(shape(inTx)).toEqual(libsqlError("SQLITE_CONSTRAINT"));
      expect(inTx.message).toBe("SQLITE_CONSTRAINT: SQLite error: UNIQUE constraint failed: t.v");
      expect(shape(await captureError(tx.execute("SELEC 1")))).toEqual(libsqlError("SQL_PARSE_ERROR"));
      await tx.execute("INSERT INTO t (v) VALUES ('also in tx')");
      await tx.commit();
      expect((await c.execute("SELECT v FROM t ORDER BY id")).rows.map((r) => r.v)).toEqual(["taken", "in tx", "also in tx"]);

      // ... unless the *first* statement does not parse: its batch carried the BEGIN, which then
      // never ran, and the client closes the transaction
      const tx2 = await c.transaction("write");
      expect(shape(await captureError(tx2.execute("SELEC 1")))).toEqual(libsqlError("SQL_PARSE_ERROR"));
      expect(shape(await captureError(tx2.execute("SELECT 1")))).toEqual(libsqlError("TRANSACTION_CLOSED"));
      expect(await c.execute("SELECT 1 AS one")).toMatchObject({ rows: [{ one: 1 }] });
    });
  }

  it("sends `{ message, code }` with the primary code on every path, and fails a cursor like sqld", async () => {
    const c = httpClient("sqld-errors-raw");
    await schema(c);
    const onlyMessageAndCode = (e: any) => expect(Object.keys(e).sort()).toEqual(["code", "message"]);
    const unique = { message: "SQLite error: UNIQUE constraint failed: t.v", code: "SQLITE_CONSTRAINT" };

    for (const version of ["v2", "v3"]) {
      const r = await pipeline(`/db/sqld-errors-raw/${version}/pipeline`, {
        baton: null,
        requests: [
          { type: "execute", stmt: { sql: "INSERT INTO t (v) VALUES ('taken')" } },
          { type: "batch", batch: { steps: [{ stmt: { sql: "SELECT 1" } }, { stmt: { sql: "INSERT INTO t (v) VALUES ('taken')" } }] } },
          { type: "batch", batch: { steps: [{ stmt: { sql: "INSERT INTO t (v) VALUES ('never')" } }, { stmt: { sql: "SELEC 1" } }] } },
          { type: "sequence", sql: "INSERT INTO t (v) VALUES ('never'); INSERT INTO t (nn) VALUES (NULL);" },
          { type: "close" },
        ],
      });
      expect(r.status).toBe(200);
      const [execute, batch, unparsable, sequence] = r.json.results;
      expect(execute).toEqual({ type: "error", error: unique });
      onlyMessageAndCode(execute.error);
      expect(batch.response.result.step_errors).toEqual([null, unique]);
      expect(unparsable).toEqual({
        type: "error",
        error: { message: 'SQL string could not be parsed: near "SELEC": syntax error', code: "SQL_PARSE_ERROR" },
      });
      expect(sequence).toEqual({ type: "error", error: { message: "SQLite error: NOT NULL constraint failed: t.nn", code: "SQLITE_CONSTRAINT" } });
      expect((await c.execute("SELECT count(*) AS n FROM t WHERE v = 'never'")).rows[0]!.n).toBe(1); // from the sequence only
      await c.execute("DELETE FROM t WHERE v = 'never'");
    }

    const cursor = (body: unknown) =>
      fetch(`${dbUrl("sqld-errors-raw")}v3/cursor`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    const stepError = await cursor({ baton: null, batch: { steps: [{ stmt: { sql: "INSERT INTO t (v) VALUES ('taken')" } }] } });
    expect(stepError.status).toBe(200);
    const lines = (await stepError.text()).trim().split("\n").map((l) => JSON.parse(l));
    expect(lines[1]).toEqual({ type: "step_error", step: 0, error: unique });
    onlyMessageAndCode(lines[1].error);

    // a statement sqld cannot parse fails the cursor request itself and drops the stream
    const open = await pipeline("/db/sqld-errors-raw/v3/pipeline", { baton: null, requests: [{ type: "execute", stmt: { sql: "BEGIN" } }] });
    const unparsable = await cursor({ baton: open.json.baton, batch: { steps: [{ stmt: { sql: "SELEC 1" } }] } });
    expect(unparsable.status).toBe(500);
    expect(await unparsable.json()).toEqual({ error: 'SQL string could not be parsed: near "SELEC": syntax error' });
    const after = await pipeline("/db/sqld-errors-raw/v3/pipeline", { baton: open.json.baton, requests: [{ type: "close" }] });
    expect(after.status).toBe(400);
    expect(after.json.code).toBe("BATON_INVALID");
  });
});

describe("idle streams and locking", () => {
  it("rolls back an abandoned transaction after streamIdleMs, then another writer succeeds", async () => {
    const local = await startServer({ port: 0, streamIdleMs: 300 });
    const a = createHttpClient({ url: local.url });
    const b = createWebClient({ url: local.url });
    try {
      await a.execute("CREATE TABLE t (v TEXT)");
      const abandoned = await a.transaction("write");
      await abandoned.execute("INSERT INTO t VALUES ('abandoned')");
      expect(local.stats().databases.default!.streamsOpen).toBe(1);
      const started = Date.now();
      await b.execute("INSERT INTO t VALUES ('other writer')"); // waits for the idle timeout
      const waited = Date.now() - started;
      expect(waited).toBeGreaterThanOrEqual(150);
      expect(waited).toBeLessThan(3000);
      expect((await b.execute("SELECT v FROM t")).rows.map((r) => r.v)).toEqual(["other writer"]);
      expect(local.stats().databases.default!.streamsOpen).toBe(0);
      const late = await captureError(abandoned.commit());
      expect(String(late.message)).toMatch(/expired|invalid/i);
    } finally {
      a.close();
      b.close();
      await local.close();
    }
  });

  it("fails a blocked writer with SQLITE_BUSY after busyTimeoutMs without blocking the server", async () => {
    const local = await startServer({ port: 0, streamIdleMs: 10_000, busyTimeoutMs: 250 });
    const a = createHttpClient({ url: local.url });
    const b = createHttpClient({ url: local.url });
    try {
      await a.execute("CREATE TABLE t (v TEXT)");
      const holder = await a.transaction("write");
      await holder.execute("INSERT INTO t VALUES ('held')");
      const blocked = captureError(b.execute("INSERT INTO t VALUES ('blocked')"));
      const health = await fetch(`${local.url}/health`);
      expect(health.status).toBe(200);
      const err = await blocked;
      expect(err.code).toBe("SQLITE_BUSY");
      await holder.commit();
      await b.execute("INSERT INTO t VALUES ('after')");
      expect((await b.execute("SELECT count(*) AS n FROM t")).rows[0]!.n).toBe(2);
    } finally {
      a.close();
      b.close();
      await local.close();
    }
  });
});

describe("lock contention edge cases", () => {
  it("reports SQLITE_BUSY (SQLite's BUSY_SNAPSHOT) for a stale deferred transaction and the stream recovers after ROLLBACK", async () => {
    const other = httpClient("snapshot");
    await other.execute("CREATE TABLE t (v TEXT)");
    const first = await pipeline("/db/snapshot/v2/pipeline", {
      baton: null,
      requests: [
        { type: "execute", stmt: { sql: "BEGIN" } },
        { type: "execute", stmt: { sql: "SELECT count(*) FROM t" } }, // takes a read snapshot
      ],
    });
    await other.execute("INSERT INTO t VALUES ('other')"); // makes that snapshot stale
    const second = await pipeline("/db/snapshot/v2/pipeline", {
      baton: first.json.baton,
      requests: [
        { type: "execute", stmt: { sql: "INSERT INTO t VALUES ('stale')" } },
        { type: "execute", stmt: { sql: "ROLLBACK" } },
        { type: "execute", stmt: { sql: "INSERT INTO t VALUES ('after')" } },
        { type: "close" },
      ],
    });
    expect(second.json.results.map((r: any) => r.error?.code ?? r.type)).toEqual(["SQLITE_BUSY", "ok", "ok", "ok"]);
    expect((await other.execute("SELECT v FROM t ORDER BY rowid")).rows.map((r) => r.v)).toEqual(["other", "after"]);
    await other.execute("INSERT INTO t VALUES ('still writable')");
  });

  it("waits for, or gives up on, a write lock held by another process", async () => {
    const file = join(tempDir(), "shared.db");
    const local = await startServer({ port: 0, file, busyTimeoutMs: 300 });
    const c = createHttpClient({ url: local.url });
    const external = new Database(file);
    try {
      await c.execute("CREATE TABLE t (v TEXT)");
      external.exec("BEGIN IMMEDIATE");
      external.exec("INSERT INTO t VALUES ('external')");
      expect(errorCode(await captureError(c.execute("INSERT INTO t VALUES ('blocked')")))).toBe("SQLITE_BUSY");
      const tx = await c.transaction("deferred");
      await tx.execute("SELECT count(*) FROM t");
      expect(errorCode(await captureError(tx.execute("INSERT INTO t VALUES ('blocked in tx')")))).toBe("SQLITE_BUSY");
      external.exec("COMMIT");
      await tx.rollback();

      external.exec("BEGIN IMMEDIATE");
      setTimeout(() => external.exec("COMMIT"), 100);
      await c.execute("INSERT INTO t VALUES ('waited')"); // retried until the external commit
      await c.execute("INSERT INTO t VALUES ('then')");
      expect((await c.execute("SELECT v FROM t ORDER BY rowid")).rows.map((r) => r.v)).toEqual(["external", "waited", "then"]);
      external.exec("INSERT INTO t VALUES ('external again')"); // the server holds no stale lock
    } finally {
      external.close();
      c.close();
      await local.close();
    }
  });
});

describe("drizzle-orm/libsql", () => {
  const users = sqliteTable("users", {
    id: integer("id").primaryKey({ autoIncrement: true }),
    name: text("name").notNull().unique(),
    age: integer("age"),
  });
  const posts = sqliteTable("posts", {
    id: integer("id").primaryKey({ autoIncrement: true }),
    userId: integer("user_id")
      .notNull()
      .references(() => users.id),
    title: text("title").notNull(),
  });

  let migrationsFolder: string;
  beforeAll(() => {
    migrationsFolder = join(tempDir(), "migrations");
    mkdirSync(join(migrationsFolder, "meta"), { recursive: true });
    writeFileSync(
      join(migrationsFolder, "meta", "_journal.json"),
      JSON.stringify({
        version: "7",
        dialect: "sqlite",
        entries: [
          { idx: 0, version: "6", when: 1700000000000, tag: "0000_users", breakpoints: true },
          { idx: 1, version: "6", when: 1700000001000, tag: "0001_posts", breakpoints: true },
        ],
      }),
    );
    writeFileSync(
      join(migrationsFolder, "0000_users.sql"),
      "CREATE TABLE `users` (\n\t`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,\n\t`name` text NOT NULL,\n\t`age` integer\n);\n" +
        "--> statement-breakpoint\nCREATE UNIQUE INDEX `users_name_unique` ON `users` (`name`);",
    );
    writeFileSync(
      join(migrationsFolder, "0001_posts.sql"),
      "CREATE TABLE `posts` (\n\t`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,\n\t`user_id` integer NOT NULL,\n\t`title` text NOT NULL,\n" +
        "\tFOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action\n);",
    );
  });

  it("migrates, inserts, selects, batches and runs transactions", async () => {
    const client = webClient("drizzle");
    const db = drizzle(client);
    await migrate(db, { migrationsFolder });
    await migrate(db, { migrationsFolder }); // idempotent
    const applied = await db.all<{ n: number }>(sql`SELECT count(*) AS n FROM __drizzle_migrations`);
    expect(applied[0]!.n).toBe(2);

    const [ann] = await db.insert(users).values({ name: "ann", age: 30 }).returning();
    expect(ann).toEqual({ id: 1, name: "ann", age: 30 });
    expect(await db.select().from(users).where(eq(users.name, "ann"))).toEqual([ann]);
    const one = await db.select({ name: users.name }).from(users).where(eq(users.id, 1)).get();
    expect(one).toEqual({ name: "ann" });

    const [inserted, , all] = await db.batch([
      db.insert(users).values({ name: "bob" }).returning({ id: users.id }),
      db.insert(posts).values({ userId: 1, title: "hello" }),
      db.select().from(users).orderBy(users.id),
    ]);
    expect(inserted).toEqual([{ id: 2 }]);
    expect(all.map((u) => u.name)).toEqual(["ann", "bob"]);

    await db.transaction(async (tx) => {
      await tx.insert(users).values({ name: "carl" });
      await tx.update(users).set({ age: 31 }).where(eq(users.name, "ann"));
      await tx.transaction(async (nested) => {
        await nested.insert(posts).values({ userId: 3, title: "nested" });
      });
    });
    expect((await db.select().from(users)).length).toBe(3);
    expect((await db.select().from(users).where(eq(users.name, "ann")))[0]!.age).toBe(31);

    const thrown = await captureError(
      db.transaction(async (tx) => {
        await tx.insert(users).values({ name: "dora" });
        throw new Error("boom");
      }),
    );
    expect(thrown.message).toBe("boom");
    const rolledBack = await captureError(
      db.transaction(async (tx) => {
        await tx.insert(users).values({ name: "eve" });
        tx.rollback();
      }),
    );
    expect(rolledBack.constructor.name).toBe("TransactionRollbackError");
    const names = (await db.select({ name: users.name }).from(users)).map((u) => u.name);
    expect(names.sort()).toEqual(["ann", "bob", "carl"]);

    const dup = await captureError(db.insert(users).values({ name: "ann" }));
    expect(errorCode(dup)).toBe("SQLITE_CONSTRAINT");
    const fk = await captureError(db.insert(posts).values({ userId: 999, title: "orphan" }));
    expect(errorCode(fk)).toBe("SQLITE_CONSTRAINT");
    expect(fk.cause.message).toMatch(/FOREIGN KEY constraint failed/);
    expect((await db.select().from(posts)).length).toBe(2);
  });
});

describe("raw Hrana over HTTP", () => {
  it("serves a v3 pipeline with stored SQL, describe, autocommit and request errors", async () => {
    const r = await pipeline("/db/raw/v3/pipeline", {
      baton: null,
      requests: [
        { type: "execute", stmt: { sql: "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL)" } },
        { type: "store_sql", sql_id: 1, sql: "INSERT INTO t (name) VALUES (?)" },
        { type: "execute", stmt: { sql_id: 1, args: [{ type: "text", value: "a" }], want_rows: false } },
        { type: "execute", stmt: { sql: "SELECT id, name FROM t WHERE name = :n", named_args: [{ name: "n", value: { type: "text", value: "a" } }] } },
        { type: "describe", sql: "SELECT id, name, :p AS x FROM t WHERE id = ?3" },
        { type: "describe", sql_id: 1 },
        { type: "describe", sql: "EXPLAIN SELECT 1" },
        { type: "close_sql", sql_id: 1 },
        { type: "execute", stmt: { sql_id: 1, args: [{ type: "text", value: "b" }] } },
        { type: "get_autocommit" },
        { type: "execute", stmt: { sql: "BEGIN" } },
        { type: "get_autocommit" },
        { type: "execute", stmt: { sql: "ROLLBACK" } },
        { type: "bogus" },
        { type: "sequence", sql: "INSERT INTO t (name) VALUES ('s1'); INSERT INTO t (name) VALUES ('s2')" },
        { type: "execute", stmt: { sql: "SELECT ?", args: [{ type: "integer", value: "99999999999999999999" }] } },
        { type: "execute", stmt: { sql: "SELECT ?", args: [{ type: "blob", base64: "AQID" }] } },
      ],
    });
    expect(r.status).toBe(200);
    expect(r.contentType).toBe("application/json");
    expect(typeof r.json.baton).toBe("string");
    expect(r.json.base_url).toBeNull();
    const res = r.json.results;
    expect(res.length).toBe(17);
    expect(res.slice(0, 8).map((x: any) => x.type)).toEqual(["ok", "ok", "ok", "ok", "ok", "ok", "ok", "ok"]);
    expect(res[2].response.result).toMatchObject({ cols: [], rows: [], affected_row_count: 1, last_insert_rowid: "1" });
    expect(res[3].response.result).toMatchObject({
      cols: [
        { name: "id", decltype: "INTEGER" },
        { name: "name", decltype: "TEXT" },
      ],
      rows: [[{ type: "integer", value: "1" }, { type: "text", value: "a" }]],
      affected_row_count: 0,
      last_insert_rowid: null,
    });
    expect(typeof res[3].response.result.query_duration_ms).toBe("number");
    expect(res[4].response).toEqual({
      type: "describe",
      result: {
        params: [{ name: ":p" }, { name: null }, { name: "?3" }],
        cols: [
          { name: "id", decltype: "INTEGER" },
          { name: "name", decltype: "TEXT" },
          { name: "x", decltype: null },
        ],
        is_explain: false,
        is_readonly: true,
      },
    });
    expect(res[5].response.result).toMatchObject({ params: [{ name: null }], cols: [], is_explain: false, is_readonly: false });
    expect(res[6].response.result).toMatchObject({ is_explain: true, is_readonly: true });
    expect(res[8]).toMatchObject({ type: "error", error: { code: "SQL_NOT_FOUND" } });
    expect(res[9].response).toEqual({ type: "get_autocommit", is_autocommit: true });
    expect(res[11].response).toEqual({ type: "get_autocommit", is_autocommit: false });
    expect(res[13].type).toBe("error");
    expect(typeof res[13].error.message).toBe("string");
    expect(res[14]).toEqual({ type: "ok", response: { type: "sequence" } });
    expect(res[15].type).toBe("error");
    expect(res[16].response.result.rows).toEqual([[{ type: "blob", base64: "AQID" }]]);

    // the stream is still usable with the returned baton, which rotates on every request
    const next = await pipeline("/db/raw/v3/pipeline", {
      baton: r.json.baton,
      requests: [{ type: "execute", stmt: { sql: "SELECT count(*) FROM t" } }, { type: "close" }, { type: "get_autocommit" }],
    });
    expect(next.status).toBe(200);
    expect(next.json.results[0].response.result.rows).toEqual([[{ type: "integer", value: "3" }]]);
    expect(next.json.results[1]).toEqual({ type: "ok", response: { type: "close" } });
    expect(next.json.results[2]).toMatchObject({ type: "error", error: { code: "STREAM_CLOSED" } });
    expect(next.json.baton).toBeNull();
    const reused = await pipeline("/db/raw/v3/pipeline", { baton: r.json.baton, requests: [] });
    expect(reused.status).toBe(400);
    expect(reused.json.message).toMatch(/baton/i);
  });

  it("evaluates batch conditions (ok, error, not, and, or, is_autocommit)", async () => {
    const step = (sql: string, condition?: unknown) => ({ stmt: { sql }, ...(condition ? { condition } : {}) });
    const r = await pipeline("/db/conds/v2/pipeline", {
      baton: null,
      requests: [
        {
          type: "batch",
          batch: {
            steps: [
              step("SELECT 0"), // 0 ok
              step("SELECT * FROM missing"), // 1 error
              step("SELECT 2", { type: "ok", step: 0 }), // 2 runs
              step("SELECT 3", { type: "ok", step: 1 }), // 3 skipped
              step("SELECT 4", { type: "error", step: 1 }), // 4 runs
              step("SELECT 5", { type: "not", cond: { type: "ok", step: 0 } }), // 5 skipped
              step("SELECT 6", { type: "and", conds: [{ type: "ok", step: 0 }, { type: "error", step: 1 }] }), // 6 runs
              step("SELECT 7", { type: "or", conds: [{ type: "ok", step: 1 }, { type: "ok", step: 3 }] }), // 7 skipped
              step("SELECT 8", { type: "is_autocommit" }), // 8 runs
              step("SELECT 9", { type: "error", step: 3 }), // 9 skipped: step 3 was skipped, not failed
              step("SELECT 10", { type: "ok", step: 10 }), // 10 invalid reference -> error
              step("BEGIN"), // 11
              step("SELECT 12", { type: "not", cond: { type: "is_autocommit" } }), // 12 runs
              step("ROLLBACK"), // 13
            ],
          },
        },
        { type: "close" },
      ],
    });
    expect(r.status).toBe(200);
    const result = r.json.results[0].response.result;
    const ran = result.step_results.map((x: unknown, i: number) => (x ? i : -1)).filter((i: number) => i >= 0);
    const failed = result.step_errors.map((x: unknown, i: number) => (x ? i : -1)).filter((i: number) => i >= 0);
    expect(ran).toEqual([0, 2, 4, 6, 8, 11, 12, 13]);
    expect(failed).toEqual([1, 10]);
    expect(result.step_results[4].rows).toEqual([[{ type: "integer", value: "4" }]]);
    expect(result.step_errors[1]).toEqual({ message: "SQLite error: no such table: missing", code: "SQLITE_UNKNOWN" });
    expect(r.json.baton).toBeNull();
  });

  it("streams a batch through the v3 cursor endpoint", async () => {
    const res = await fetch(`${dbUrl("cursor")}v3/cursor`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        baton: null,
        batch: { steps: [{ stmt: { sql: "SELECT 1 AS a UNION ALL SELECT 2" } }, { stmt: { sql: "SELECT * FROM nope" } }] },
      }),
    });
    expect(res.status).toBe(200);
    const lines = (await res.text()).trim().split("\n").map((l) => JSON.parse(l));
    expect(typeof lines[0].baton).toBe("string");
    expect(lines.slice(1).map((e: any) => e.type)).toEqual(["step_begin", "row", "row", "step_end", "step_error"]);
    await pipeline("/db/cursor/v3/pipeline", { baton: lines[0].baton, requests: [{ type: "close" }] });
  });

  it("rejects malformed bodies, unknown batons and oversized bodies", async () => {
    const malformed = await pipeline("/v2/pipeline", "{not json");
    expect(malformed.status).toBe(400);
    expect(malformed.contentType).toBe("application/json");
    expect(typeof malformed.json.message).toBe("string");
    expect(typeof malformed.json.code).toBe("string");
    for (const body of ["[]", "null", '{"requests": 5}', '{"baton": 5, "requests": []}']) {
      const r = await pipeline("/v2/pipeline", body);
      expect(r.status).toBe(400);
      expect(typeof r.json.message).toBe("string");
    }
    const badShapes = await pipeline("/v2/pipeline", {
      baton: null,
      requests: [
        null,
        { type: "execute" },
        { type: "execute", stmt: { sql: "SELECT ?", args: [{ type: "wat" }] } },
        { type: "batch", batch: { steps: "no" } },
        { type: "execute", stmt: { sql: 5 } },
        { type: "close" },
      ],
    });
    expect(badShapes.status).toBe(200);
    expect(badShapes.json.results.map((x: any) => x.type)).toEqual(["error", "error", "error", "error", "error", "ok"]);

    const unknownBaton = await pipeline("/v2/pipeline", { baton: "bm90LWEtYmF0b24", requests: [] });
    expect(unknownBaton.status).toBe(400);
    expect(unknownBaton.json.code).toBe("BATON_INVALID");

    const big = "x".repeat(10 * 1024 * 1024 + 10);
    const tooLarge = await fetch(`${server.url}/v2/pipeline`, { method: "POST", body: big });
    expect(tooLarge.status).toBe(413);
    await tooLarge.text();
    const chunks = [new TextEncoder().encode(big.slice(0, 6 * 1024 * 1024)), new TextEncoder().encode(big.slice(6 * 1024 * 1024))];
    const streamed = await fetch(`${server.url}/v2/pipeline`, {
      method: "POST",
      body: new ReadableStream({
        pull(controller) {
          const chunk = chunks.shift();
          if (chunk) controller.enqueue(chunk);
          else controller.close();
        },
      }),
      duplex: "half",
    } as RequestInit);
    expect(streamed.status).toBe(413);
    await streamed.text();
    // and the server is still fine
    expect((await pipeline("/v2/pipeline", { baton: null, requests: [{ type: "close" }] })).status).toBe(200);
  });
});

describe("isolated databases and stats", () => {
  it("keeps /db/<name>/ databases apart and drops them with DELETE", async () => {
    const a = httpClient("iso-a");
    const b = httpClient("iso-b");
    await a.execute("CREATE TABLE only_in_a (v)");
    await a.execute("INSERT INTO only_in_a VALUES (1)");
    expect((await captureError(b.execute("SELECT * FROM only_in_a"))).message).toMatch(/no such table/);
    expect((await captureError(httpClient("default-db").execute("SELECT * FROM only_in_a"))).message).toMatch(/no such table/);
    expect((await a.execute("SELECT count(*) AS n FROM only_in_a")).rows[0]!.n).toBe(1);
    const dropped = await fetch(dbUrl("iso-a"), { method: "DELETE" });
    expect(dropped.status).toBe(200);
    expect((await captureError(a.execute("SELECT * FROM only_in_a"))).message).toMatch(/no such table/);
    expect((await fetch(`${server.url}/`, { method: "DELETE" })).status).toBe(400);
  });

  it("counts pipelines (round trips) per database", async () => {
    const c = httpClient("stats");
    await c.execute("CREATE TABLE s (v)");
    expect((await fetch(`${server.url}/dev/stats/reset?db=stats`, { method: "POST" })).status).toBe(200);
    const stats = async () => (await (await fetch(`${server.url}/dev/stats`)).json()) as any;
    expect((await stats()).databases.stats).toMatchObject({ pipelines: 0, requests: 0, streamsOpen: 0 });
    await c.execute("INSERT INTO s VALUES (1)");
    expect((await stats()).databases.stats).toMatchObject({ pipelines: 1, requests: 2 });
    await c.batch(["INSERT INTO s VALUES (2)", "SELECT * FROM s"], "write");
    expect((await stats()).databases.stats.pipelines).toBe(2);
    const tx = await c.transaction("write");
    await tx.execute("INSERT INTO s VALUES (3)");
    expect((await stats()).databases.stats).toMatchObject({ pipelines: 3, streamsOpen: 1 });
    await tx.commit();
    const after = await stats();
    expect(after.databases.stats).toMatchObject({ pipelines: 4, streamsOpen: 0 });
    expect(after.total.pipelines).toBeGreaterThanOrEqual(4);
    expect(server.stats().databases.stats!.pipelines).toBe(4);
    await fetch(`${server.url}/dev/stats/reset`, { method: "POST" });
    expect((await stats()).total.pipelines).toBe(0);
  });
});

describe("connections kept between streams (as sqld keeps them)", () => {
  const stats = async (name: string) => ((await (await fetch(`${server.url}/dev/stats`)).json()) as any).databases[name];

  it("gives a new stream the connection of a closed one instead of opening another", async () => {
    const c = httpClient("pool-reuse");
    await c.execute("CREATE TABLE p (v)");
    const before = await stats("pool-reuse");
    for (let i = 0; i < 10; i++) await c.execute({ sql: "INSERT INTO p VALUES (?)", args: [i] });
    const after = await stats("pool-reuse");
    expect(after.connectionsOpened - before.connectionsOpened).toBe(0);
    expect(after.connectionsReused - before.connectionsReused).toBe(10);
    expect((await c.execute("SELECT count(*) AS n FROM p")).rows[0]!.n).toBe(10);
    // Concurrent streams each get a connection of their own; at most 16 are kept afterwards.
    await Promise.all(Array.from({ length: 24 }, (_, i) => c.execute({ sql: "INSERT INTO p VALUES (?)", args: [100 + i] })));
    const conc = await stats("pool-reuse");
    expect(conc.streamsOpen).toBe(0);
    expect((await c.execute("SELECT count(*) AS n FROM p")).rows[0]!.n).toBe(34);
  });

  it("never hands a stream what an earlier stream set on its connection", async () => {
    const c = httpClient("pool-session");
    const defaultCache = (await c.execute("PRAGMA cache_size")).rows[0]![0];
    await c.execute("PRAGMA cache_size = 123");
    expect((await c.execute("PRAGMA cache_size")).rows[0]![0]).toBe(defaultCache);
    await c.execute("CREATE TEMP TABLE only_here (x)");
    expect((await captureError(c.execute("SELECT * FROM temp.only_here"))).message).toMatch(/no such table/);
    await c.execute("CREATE TABLE kept (v)");
    const tx = await c.transaction("write");
    await tx.execute("INSERT INTO kept VALUES (1)");
    tx.close(); // abandoned: rolled back, its connection not reused inside a transaction
    await new Promise((r) => setTimeout(r, 50));
    expect((await c.execute("SELECT count(*) AS n FROM kept")).rows[0]!.n).toBe(0);
    await c.execute("INSERT INTO kept VALUES (2)");
    expect((await c.execute("SELECT count(*) AS n FROM kept")).rows[0]!.n).toBe(1);
  });
});

describe("authentication", () => {
  it("requires the bearer token on Hrana endpoints when configured", async () => {
    const local = await startServer({ port: 0, authToken: "s3cret" });
    try {
      const body = JSON.stringify({ baton: null, requests: [{ type: "execute", stmt: { sql: "SELECT 1" } }, { type: "close" }] });
      const post = (headers: Record<string, string>, path = "/v2/pipeline") =>
        fetch(`${local.url}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
      const none = await post({});
      expect(none.status).toBe(401);
      expect(((await none.json()) as any).code).toBe("UNAUTHORIZED");
      expect((await post({ authorization: "Bearer wrong" })).status).toBe(401);
      expect((await post({ authorization: "Bearer s3cret" })).status).toBe(200);
      expect((await post({ authorization: "Bearer s3cret" }, "/db/x/v3/pipeline")).status).toBe(200);
      expect((await fetch(`${local.url}/v2`)).status).toBe(401);
      expect((await fetch(`${local.url}/health`)).status).toBe(200);
      expect((await fetch(`${local.url}/dev/stats`)).status).toBe(200);

      const good = createHttpClient({ url: local.url, authToken: "s3cret" });
      const bad = createWebClient({ url: local.url, authToken: "nope" });
      try {
        expect((await good.execute("SELECT 41 + 1 AS v")).rows[0]!.v).toBe(42);
        const err = await captureError(bad.execute("SELECT 1"));
        expect(err.code).toBe("UNAUTHORIZED");
      } finally {
        good.close();
        bad.close();
      }
    } finally {
      await local.close();
    }
  });
});

describe("file-backed databases", () => {
  it("persist across a server restart", async () => {
    const dir = tempDir();
    const file = join(dir, "nested", "dev.db");
    let local = await startServer({ port: 0, file });
    let c = createHttpClient({ url: local.url });
    let named = createHttpClient({ url: `${local.url}/db/extra/` });
    await c.execute("CREATE TABLE kept (v TEXT)");
    await c.execute({ sql: "INSERT INTO kept VALUES (?)", args: ["survives"] });
    await named.execute("CREATE TABLE extra (v)");
    c.close();
    named.close();
    await local.close();
    expect(existsSync(file)).toBe(true);
    expect(existsSync(join(dir, "nested", "dev.extra.db"))).toBe(true);

    local = await startServer({ port: 0, file });
    c = createHttpClient({ url: local.url });
    named = createHttpClient({ url: `${local.url}/db/extra/` });
    try {
      expect((await c.execute("SELECT v FROM kept")).rows.map((r) => r.v)).toEqual(["survives"]);
      expect((await named.execute("SELECT count(*) AS n FROM extra")).rows[0]!.n).toBe(0);
      expect((await fetch(`${local.url}/db/extra/`, { method: "DELETE" })).status).toBe(200);
      expect(existsSync(join(dir, "nested", "dev.extra.db"))).toBe(false);
    } finally {
      c.close();
      named.close();
      await local.close();
    }
  });
});

describe("cli", () => {
  it("prints the listening line and exits cleanly on SIGTERM", async () => {
    const dir = tempDir();
    const child = spawn(process.execPath, [cliPath, "--port", "0", "--file", join(dir, "a", "b", "cli.db")], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = "";
        const timer = setTimeout(() => reject(new Error(`no listening line; got: ${out}`)), 10_000);
        child.stdout.on("data", (chunk) => {
          out += chunk.toString();
          const m = /^listening on (http:\/\/127\.0\.0\.1:(\d+))$/m.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]!);
          }
        });
        child.once("exit", (code) => reject(new Error(`cli exited early (${code}): ${out}`)));
      });
      expect((await fetch(`${url}/health`)).status).toBe(200);
      const c = createHttpClient({ url });
      expect((await c.execute("SELECT 'cli' AS v")).rows[0]!.v).toBe("cli");
      c.close();
      expect(existsSync(join(dir, "a", "b", "cli.db"))).toBe(true);
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
  });
});

describe("--latency-ms (a remote database's round trip)", () => {
  /** Wall time of `n` sequential round trips and of `n` concurrent ones. */
  async function timed(url: string, n: number) {
    const c = createHttpClient({ url });
    try {
      await c.execute("SELECT 1"); // connection warm
      let t = Date.now();
      for (let i = 0; i < n; i++) await c.execute("SELECT 1");
      const sequential = Date.now() - t;
      t = Date.now();
      await Promise.all(Array.from({ length: n }, () => c.batch(["SELECT 1", "SELECT 2"], "read")));
      return { sequential, concurrent: Date.now() - t };
    } finally {
      c.close();
    }
  }

  it("delays every round trip by the given time, without holding up the others", async () => {
    const slow = await startServer({ port: 0, latencyMs: 80 });
    try {
      const { sequential, concurrent } = await timed(slow.url, 5);
      expect(sequential).toBeGreaterThanOrEqual(5 * 80);
      // Five round trips at once take about one delay, not five.
      expect(concurrent).toBeGreaterThanOrEqual(80);
      expect(concurrent).toBeLessThan(4 * 80);
      // Probes and stats are not delayed.
      const t = Date.now();
      expect((await fetch(`${slow.url}/health`)).status).toBe(200);
      expect(Date.now() - t).toBeLessThan(80);
    } finally {
      await slow.close();
    }
    await expect(startServer({ port: 0, latencyMs: -1 })).rejects.toThrow(/latencyMs/);
  });

  it("is an option of the CLI: `npm run db -- --latency-ms 30`, checked like the others", async () => {
    const child = spawn(process.execPath, [cliPath, "--port", "0", "--latency-ms", "60"], { stdio: ["ignore", "pipe", "pipe"] });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = "";
        const timer = setTimeout(() => reject(new Error(`no listening line; got: ${out}`)), 10_000);
        child.stdout.on("data", (chunk) => {
          out += chunk.toString();
          const m = /^listening on (http:\/\/127\.0\.0\.1:(\d+))$/m.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]!);
          }
        });
        child.once("exit", (code) => reject(new Error(`cli exited early (${code}): ${out}`)));
      });
      const { sequential } = await timed(url, 3);
      expect(sequential).toBeGreaterThanOrEqual(3 * 60);
    } finally {
      child.kill("SIGTERM");
    }
    const bad = spawn(process.execPath, [cliPath, "--latency-ms", "soon"], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    bad.stderr.on("data", (c) => (stderr += c));
    const code = await new Promise<number | null>((resolve) => bad.once("exit", resolve));
    expect(code).toBe(2);
    expect(stderr).toContain("--latency-ms must be an integer >= 0");
  });
});
