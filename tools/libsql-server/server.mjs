// A small local libSQL server speaking Hrana over HTTP (versions 2 and 3, JSON only), backed by
// the `libsql` npm package (the real libSQL engine). See README.md beside this file.
//
// Model: every Hrana stream owns its own libsql connection to the database file (WAL mode), so
// interactive transactions span HTTP requests like with sqld. libsql is synchronous, so connections
// never use SQLite's busy_timeout (a wait would block the whole event loop). Instead each database
// has a write gate: one stream at a time holds the write lock and other writers wait
// asynchronously (up to `busyTimeoutMs`); SQLITE_BUSY caused by another process is retried
// asynchronously too. Idle streams are closed (rolled back) after `streamIdleMs`, which also
// releases the gate held by an abandoned transaction.
import { randomBytes, timingSafeEqual } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, parse as parsePath, resolve as resolvePath } from "node:path";
import { performance } from "node:perf_hooks";
import v8 from "node:v8";
import vm from "node:vm";
import Database from "libsql";

const VERSION = "local-libsql-server 0.1.0 (Hrana 2/3 over HTTP, JSON)";
const DB_NAME_RE = /^[A-Za-z0-9_-]{1,64}$/;
const MIN_I64 = -(2n ** 63n);
const MAX_I64 = 2n ** 63n - 1n;
const MAX_STORED_SQLS = 1000;
const EXPIRED_BATON_TTL_MS = 5 * 60 * 1000;
/** connections of closed streams kept per database for the next streams */
const IDLE_CONNECTIONS = 16;

/** Temp directories of in-memory servers not closed yet: removed if the process exits first. */
const liveTempDirs = new Set();
let exitHookInstalled = false;
function trackTempDir(/** @type {string} */ dir) {
  liveTempDirs.add(dir);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const d of liveTempDirs) {
      try { rmSync(d, { recursive: true, force: true }); } catch { /* best effort */ }
    }
  });
}

/** An error that is reported to the client as a Hrana `Error` ({message, code}). */
class HranaError extends Error {
  /** @param {string} message @param {string} code @param {number} [status] HTTP status when fatal */
  constructor(message, code, status = 400) {
    super(message);
    this.code = code;
    this.status = status;
  }
}
const protoError = (/** @type {string} */ message) => new HranaError(message, "HRANA_PROTO_ERROR");

/** An HTTP error answered as sqld's generic errors are: `{"error": message}`, no Hrana `Error`. */
class SqldHttpError extends Error {
  /** @param {string} message @param {number} status */
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}
/** Codes of sqld's errors for a statement it cannot take at all (its StmtError before execution). */
const STMT_ERROR_CODES = new Set(["SQL_PARSE_ERROR", "SQL_NO_STATEMENT", "SQL_MANY_STATEMENTS"]);

// ---------------------------------------------------------------------------------------------
// SQL scanning: statement splitting, parameter discovery (numbered exactly like SQLite does) and a
// rough classification of each statement.

const isIdStart = (/** @type {string} */ c) => /[A-Za-z_]/.test(c) || c.charCodeAt(0) > 0x7f;
const isIdChar = (/** @type {string} */ c) => /[A-Za-z0-9_$]/.test(c) || c.charCodeAt(0) > 0x7f;
const MAIN_KEYWORDS = new Set(["SELECT", "VALUES", "INSERT", "REPLACE", "UPDATE", "DELETE"]);

/**
 * Splits SQL text into statements the way SQLite's tokenizer would (strings, quoted identifiers,
 * comments and CREATE TRIGGER bodies are respected). Empty statements are dropped.
 * @param {string} sql
 * @returns {{ sql: string, words: string[], vars: string[] }[]} each statement with its first
 *   keywords at paren depth 0 and its parameter tokens (`?`, `?3`, `:a`, `@a`, `$a`) in order
 */
export function splitSql(sql) {
  /** @type {{ sql: string, words: string[], vars: string[] }[]} */
  const out = [];
  const n = sql.length;
  let start = 0, i = 0, hasToken = false, depth = 0;
  let trigger = false, inBody = false, caseDepth = 0;
  /** @type {string[]} */
  let words = [];
  /** @type {string[]} */
  let vars = [];
  const finish = (/** @type {number} */ end) => {
    if (hasToken) out.push({ sql: sql.slice(start, end).trim(), words, vars });
    hasToken = false; depth = 0; trigger = false; inBody = false; caseDepth = 0; words = []; vars = [];
  };
  while (i < n) {
    const c = sql[i];
    if (c === ";") {
      if (trigger && inBody) { i++; continue; }
      finish(i + 1);
      start = ++i;
      continue;
    }
    if (c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\f" || c === "\v") { i++; continue; }
    if (c === "-" && sql[i + 1] === "-") { const j = sql.indexOf("\n", i); i = j < 0 ? n : j + 1; continue; }
    if (c === "/" && sql[i + 1] === "*") { const j = sql.indexOf("*/", i + 2); i = j < 0 ? n : j + 2; continue; }
    hasToken = true;
    if (c === "'" || c === '"' || c === "`") {
      let j = i + 1;
      while (j < n) {
        if (sql[j] === c) { if (sql[j + 1] === c) { j += 2; continue; } break; }
        j++;
      }
      i = j + 1;
      continue;
    }
    if (c === "[") { const j = sql.indexOf("]", i + 1); i = j < 0 ? n : j + 1; continue; }
    if (c === "(") { depth++; i++; continue; }
    if (c === ")") { depth--; i++; continue; }
    if (c === "?") {
      let j = i + 1;
      while (j < n && sql[j] >= "0" && sql[j] <= "9") j++;
      vars.push(sql.slice(i, j));
      i = j;
      continue;
    }
    if (c === ":" || c === "@" || c === "$" || c === "#") {
      // same rules as SQLite's tokenizer, including Tcl-style `$a::b(c)`
      let j = i + 1, len = 0;
      while (j < n) {
        const d = sql[j];
        if (isIdChar(d)) { len++; j++; }
        else if (d === "(" && len > 0) {
          j++;
          while (j < n && !/\s/.test(sql[j]) && sql[j] !== ")") j++;
          if (sql[j] === ")") j++;
          break;
        } else if (d === ":" && sql[j + 1] === ":") j += 2;
        else break;
      }
      if (len > 0) vars.push(sql.slice(i, j));
      i = j;
      continue;
    }
    if (isIdStart(c)) {
      let j = i + 1;
      while (j < n && isIdChar(sql[j])) j++;
      const w = sql.slice(i, j).toUpperCase();
      i = j;
      if (depth === 0 && words.length < 64) words.push(w);
      if (!trigger && words[0] === "CREATE" && w === "TRIGGER" && words.length <= 3) trigger = true;
      else if (trigger) {
        if (!inBody) { if (w === "BEGIN") inBody = true; }
        else if (w === "CASE") caseDepth++;
        else if (w === "END") { if (caseDepth > 0) caseDepth--; else inBody = false; }
      }
      continue;
    }
    i++;
  }
  finish(n);
  return out;
}

/**
 * @typedef {object} SqlAnalysis
 * @property {number} count number of statements
 * @property {string} first first keyword of the first statement
 * @property {boolean} isExplain
 * @property {boolean} isInsert INSERT or REPLACE (reports last_insert_rowid)
 * @property {boolean} isIud INSERT, REPLACE, UPDATE or DELETE (reports affected_row_count)
 * @property {boolean} wrappable a write that may run inside BEGIN IMMEDIATE ... COMMIT when in autocommit
 * @property {boolean} beginsReadonly BEGIN ... READONLY
 * @property {boolean} sessionState PRAGMA, ATTACH, DETACH or CREATE TEMP: outlives the stream on its connection
 * @property {number} paramCount what sqlite3_bind_parameter_count() returns for the first statement
 * @property {(string|undefined)[]} paramNames 1-based: `:a`, `?3`, or undefined for `?`
 * @property {boolean[]} paramUsed 1-based: the index appears in the SQL (not just skipped by `?NNN`)
 */

/** @type {Map<string, SqlAnalysis>} */
const analysisCache = new Map();

/** @param {string} sql @returns {SqlAnalysis} */
function analyzeSql(sql) {
  let a = analysisCache.get(sql);
  if (a) return a;
  const stmts = splitSql(sql);
  const words = stmts[0]?.words ?? [];
  const first = words[0] ?? "";
  const main = first === "WITH" ? words.find((w) => MAIN_KEYWORDS.has(w)) ?? "" : first;
  const isIud = main === "INSERT" || main === "REPLACE" || main === "UPDATE" || main === "DELETE";
  // parameter numbering as in sqlite3ExprAssignVarNumber()
  let paramCount = 0;
  /** @type {(string|undefined)[]} */
  const paramNames = [];
  /** @type {boolean[]} */
  const paramUsed = [];
  /** @type {Map<string, number>} */
  const byName = new Map();
  for (const v of stmts[0]?.vars ?? []) {
    let idx;
    if (v === "?") idx = ++paramCount;
    else if (v[0] === "?") {
      idx = Number(v.slice(1));
      if (!(idx >= 1 && idx <= 32766)) continue; // SQLite refuses to prepare it
      if (idx > paramCount) paramCount = idx;
      if (paramNames[idx] === undefined) paramNames[idx] = v;
    } else {
      idx = byName.get(v);
      if (idx === undefined) {
        idx = ++paramCount;
        byName.set(v, idx);
        paramNames[idx] = v;
      }
    }
    paramUsed[idx] = true;
  }
  a = {
    count: stmts.length,
    first,
    isExplain: first === "EXPLAIN",
    isInsert: main === "INSERT" || main === "REPLACE",
    isIud,
    wrappable: isIud || first === "CREATE" || first === "DROP" || first === "ALTER",
    beginsReadonly: first === "BEGIN" && words.includes("READONLY"),
    sessionState: first === "PRAGMA" || first === "ATTACH" || first === "DETACH" || (first === "CREATE" && (words.includes("TEMP") || words.includes("TEMPORARY"))),
    paramCount,
    paramNames,
    paramUsed,
  };
  if (analysisCache.size >= 2000) analysisCache.delete(/** @type {string} */ (analysisCache.keys().next().value));
  analysisCache.set(sql, a);
  return a;
}

// ---------------------------------------------------------------------------------------------
// Values

/** @param {unknown} v */
const isObj = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * Hrana JSON value -> value bindable by libsql (bigint, number, string, Buffer, null).
 * @param {unknown} v
 */
function decodeValue(v) {
  if (!isObj(v)) throw protoError("Expected a Value object");
  const o = /** @type {Record<string, unknown>} */ (v);
  switch (o.type) {
    case "null":
      return null;
    case "integer": {
      let s = o.value;
      if (typeof s === "number" && Number.isSafeInteger(s)) s = String(s);
      if (typeof s !== "string" || !/^[+-]?\d{1,20}$/.test(s)) throw protoError("Integer value must be a decimal string");
      const b = BigInt(s);
      if (b < MIN_I64 || b > MAX_I64) throw protoError(`Integer value ${s} does not fit in 64 bits`);
      return b;
    }
    case "float":
      if (typeof o.value !== "number") throw protoError("Float value must be a number");
      return o.value;
    case "text":
      if (typeof o.value !== "string") throw protoError("Text value must be a string");
      return o.value;
    case "blob":
      if (typeof o.base64 !== "string") throw protoError("Blob value must have a base64 string");
      return Buffer.from(o.base64, "base64");
    default:
      throw protoError(`Unknown value type ${JSON.stringify(o.type)}`);
  }
}

/** libsql value -> Hrana JSON value. @param {unknown} v */
function encodeValue(v) {
  if (v === null || v === undefined) return { type: "null" };
  if (typeof v === "bigint") return { type: "integer", value: v.toString() };
  if (typeof v === "number") return Number.isFinite(v) ? { type: "float", value: v } : { type: "null" };
  if (typeof v === "string") return { type: "text", value: v };
  if (v instanceof Uint8Array) return { type: "blob", base64: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64") };
  return { type: "text", value: String(v) };
}

// Errors are reported as sqld reports them (libsql-server src/hrana/stmt.rs): a Hrana `Error` is
// only `{message, code}` (Hrana 3 has no extended-code field), and `code` is the *primary* result
// code named through rusqlite's ErrorCode, which has no variant for SQLITE_ERROR (1), so plain SQL
// errors such as "no such table" come out as SQLITE_UNKNOWN. The extended code (UNIQUE, NOTNULL,
// ...) is only in the message, e.g. "SQLite error: UNIQUE constraint failed: t.v". Syntax errors
// are caught by sqld's own parser before SQLite sees the statement: SQL_PARSE_ERROR.

/** Primary result code numbers by name (https://www.sqlite.org/rescode.html). */
const SQLITE_PRIMARY = new Map(Object.entries({
  SQLITE_ERROR: 1, SQLITE_INTERNAL: 2, SQLITE_PERM: 3, SQLITE_ABORT: 4, SQLITE_BUSY: 5, SQLITE_LOCKED: 6,
  SQLITE_NOMEM: 7, SQLITE_READONLY: 8, SQLITE_INTERRUPT: 9, SQLITE_IOERR: 10, SQLITE_CORRUPT: 11,
  SQLITE_NOTFOUND: 12, SQLITE_FULL: 13, SQLITE_CANTOPEN: 14, SQLITE_PROTOCOL: 15, SQLITE_EMPTY: 16,
  SQLITE_SCHEMA: 17, SQLITE_TOOBIG: 18, SQLITE_CONSTRAINT: 19, SQLITE_MISMATCH: 20, SQLITE_MISUSE: 21,
  SQLITE_NOLFS: 22, SQLITE_AUTH: 23, SQLITE_FORMAT: 24, SQLITE_RANGE: 25, SQLITE_NOTADB: 26,
  SQLITE_NOTICE: 27, SQLITE_WARNING: 28,
}));
/** The primary codes sqld names; every other one (ERROR, EMPTY, FORMAT, NOTICE, WARNING) is SQLITE_UNKNOWN. */
const SQLD_NAMED = new Set([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 17, 18, 19, 20, 21, 22, 23, 25, 26]);
const SQLD_NAME_BY_PRIMARY = new Map([...SQLITE_PRIMARY].filter(([, n]) => SQLD_NAMED.has(n)).map(([name, n]) => [n, name]));

/**
 * sqld's Hrana `code` for an error of the libsql engine (`code` is SQLite's extended name, e.g.
 * SQLITE_CONSTRAINT_UNIQUE, `rawCode` the extended number) or one of this server's SQLite-style
 * errors (SQLITE_BUSY, SQLITE_READONLY).
 * @param {{ code: string, rawCode?: unknown }} e
 */
function sqldSqliteCode(e) {
  let primary = typeof e.rawCode === "number" ? e.rawCode & 0xff : undefined;
  if (primary === undefined) {
    for (const [name, n] of SQLITE_PRIMARY) if (e.code === name || e.code.startsWith(`${name}_`)) primary = n;
  }
  return (primary !== undefined && SQLD_NAME_BY_PRIMARY.get(primary)) || "SQLITE_UNKNOWN";
}

/** SQLite's messages for SQL it cannot tokenize or parse (schema-independent). */
const PARSE_ERROR_RE = /^(?:near ".*": syntax error|incomplete input|unrecognized token: .*)$/s;

/** The SQL_PARSE_ERROR sqld answers for SQL its parser rejects, if `e` is such an error. @param {any} e */
function parseErrorOf(e) {
  if (!e || e instanceof HranaError || e.code !== "SQLITE_ERROR" || !PARSE_ERROR_RE.test(String(e.message))) return undefined;
  return new HranaError(`SQL string could not be parsed: ${e.message}`, "SQL_PARSE_ERROR");
}

/** statements kept prepared per connection (the most recently prepared first to go beyond it) */
const PREPARED_PER_CONNECTION = 256;

/**
 * conn.prepare(), with parse errors reported as sqld does. A connection keeps what it prepared
 * (keyed by the SQL text), as sqld's connections keep a statement cache: the same statements come
 * back with every request, and a batch's statements were prepared twice (checkParse, then the
 * execution). SQLite prepares a kept statement again by itself if the schema changed.
 * @param {any} conn @param {string} sql
 */
function prepareSql(conn, sql) {
  const cache = connStatements(conn).bySql;
  const kept = cache.get(sql);
  if (kept) return kept;
  let prepared;
  try {
    prepared = conn.prepare(sql);
  } catch (e) {
    throw parseErrorOf(e) ?? e;
  }
  // Never kept: SQLite applies a flag PRAGMA (foreign_keys, …) when it prepares it, so only a
  // fresh prepare right before it runs gives it its place in a batch.
  if (analyzeSql(sql).sessionState) return prepared;
  if (cache.size >= PREPARED_PER_CONNECTION) cache.delete(/** @type {string} */ (cache.keys().next().value));
  cache.set(sql, prepared);
  return prepared;
}

/** Drops a kept statement (one libsql left active: only its finalizer can release it). @param {any} conn @param {string} sql */
function forgetStatement(conn, sql) {
  connStatements(conn).bySql.delete(sql);
}

/**
 * sqld parses every statement of a batch or sequence before running any of them, so one that does
 * not parse fails the whole request and nothing runs. SQLite's prepare() finds the same errors;
 * other prepare errors (e.g. a table an earlier step creates) are left to the execution.
 * @param {Stream} stream @param {string[]} sqls
 */
function checkParse(stream, sqls) {
  if (stream.closed) return;
  for (const sql of sqls) {
    // Preparing a flag PRAGMA already sets it (prepareSql): the connection is not handed on.
    if (analyzeSql(sql).sessionState) stream.changesSession = true;
    try {
      prepareSql(stream.conn, sql);
    } catch (e) {
      if (e instanceof HranaError && e.code === "SQL_PARSE_ERROR") throw e;
    }
  }
}

/** Any thrown thing -> Hrana Error object. @param {any} e */
function toErrorObject(e) {
  if (e instanceof HranaError) return { message: e.message, code: e.code.startsWith("SQLITE_") ? sqldSqliteCode(e) : e.code };
  if (e && typeof e.code === "string" && e.code.startsWith("SQLITE_")) return { message: `SQLite error: ${e.message}`, code: sqldSqliteCode(e) };
  const message = String(e?.message ?? e);
  if (/can only bind/i.test(message)) return { message, code: "ARGS_INVALID" };
  if (/not open/i.test(message)) return { message, code: "STREAM_CLOSED" };
  return { message, code: "INTERNAL_ERROR" };
}

/** SQLITE_BUSY (but not BUSY_SNAPSHOT, which never clears by waiting) is worth retrying. @param {any} e */
const isRetryableBusy = (e) =>
  !!e && typeof e.code === "string" && (e.code === "SQLITE_BUSY" || (e.code.startsWith("SQLITE_BUSY_") && e.code !== "SQLITE_BUSY_SNAPSHOT"));

/** Errors after which libsql leaves the prepared statement un-reset ("active"). @param {any} e */
const isStuckError = (e) =>
  !(e instanceof HranaError) && !!e && typeof e.code === "string" && (e.code.startsWith("SQLITE_BUSY") || e.code.startsWith("SQLITE_LOCKED"));

const sleep = (/** @type {number} */ ms) => new Promise((r) => setTimeout(r, ms));

/**
 * SQLite keeps an EXPLAIN statement "active" after its last row until it is reset, and an active
 * EXPLAIN of a write statement postpones the connection's autocommit COMMIT (so the write lock is
 * never released). libsql has no reset(); get() resets the statement when it returns.
 * @param {any} st an EXPLAIN statement that has been run to completion
 */
function resetExplain(st) {
  try {
    st.get();
  } catch { /* best effort */ }
}

/** @type {(() => void) | undefined} */
let gcFunction;
/**
 * Last resort for a statement that libsql left active after SQLITE_BUSY/LOCKED (it has no reset()
 * or finalize()): an active statement keeps its connection's locks and postpones its commits. Once
 * nothing references it, a forced garbage collection runs its finalizer (on a later tick).
 */
async function finalizeDroppedStatements() {
  if (!gcFunction) {
    if (typeof globalThis.gc === "function") gcFunction = /** @type {() => void} */ (globalThis.gc);
    else {
      v8.setFlagsFromString("--expose-gc");
      gcFunction = vm.runInNewContext("gc");
    }
  }
  for (let i = 0; i < 2; i++) {
    /** @type {() => void} */ (gcFunction)();
    await new Promise((r) => setImmediate(r));
    await sleep(5);
  }
}

/** What a connection keeps prepared across streams. @type {WeakMap<object, { ro?: any, changes?: any, bySql: Map<string, any> }>} */
const keptStatements = new WeakMap();
/** @param {object} conn */
function connStatements(conn) {
  let kept = keptStatements.get(conn);
  if (!kept) keptStatements.set(conn, (kept = { bySql: new Map() }));
  return kept;
}

// ---------------------------------------------------------------------------------------------
// Databases and streams

/**
 * @typedef {{ readonly: boolean, writes: boolean }} StmtInfo
 * @typedef {{ sql: string, args: unknown[], named: Map<string, unknown>, wantRows: boolean, analysis: SqlAnalysis }} Stmt
 */

class DbHost {
  /**
   * @param {Server} server
   * @param {string} name
   * @param {string} path database file
   * @param {boolean} temporary in-memory mode (a temp file, synchronous=OFF, deleted on close)
   */
  constructor(server, name, path, temporary) {
    this.server = server;
    this.name = name;
    this.path = path;
    this.temporary = temporary;
    /** @type {Set<Stream>} */
    this.streams = new Set();
    /** @type {Map<string, StmtInfo>} */
    this.infoCache = new Map();
    /** @type {Stream|null} the stream whose connection holds (or is about to take) the write lock */
    this.writer = null;
    /** @type {(() => void)[]} */
    this.writeWaiters = [];
    /**
     * Connections of closed streams, kept for the next streams (sqld, too, keeps its connections
     * between streams): a new connection would parse the schema again and start with an empty
     * page cache. Only a connection in the state of a new one comes back here (DbHost.giveBack).
     * @type {any[]}
     */
    this.idle = [];
    /** connections opened for streams / streams that took a kept one (GET /dev/stats) */
    this.opened = 0;
    this.reused = 0;
    this.closed = false;
    mkdirSync(dirname(path), { recursive: true });
    // A connection held for the database's lifetime: it switches the file to WAL once, and keeps
    // the WAL from being checkpointed and deleted every time a stream's connection closes.
    this.keeper = this.openConnection();
    this.keeper.exec("PRAGMA journal_mode=WAL");
  }

  /** A connection for a new stream: a kept one if there is one, else a new one. */
  streamConnection() {
    const kept = this.idle.pop();
    if (kept) {
      this.reused++;
      return kept;
    }
    this.opened++;
    return this.openConnection();
  }

  /**
   * Takes back the connection of a closed stream, or closes it: kept only when nothing the stream
   * did can show in the next stream (no transaction, no statement left active, no PRAGMA, ATTACH
   * or temporary object; see Stream.changesSession) and fewer than IDLE_CONNECTIONS are kept.
   * @param {Stream} stream
   */
  giveBack(stream) {
    const conn = stream.conn;
    if (!this.closed && conn.open && !conn.inTransaction && !stream.needsFinalize && !stream.changesSession && this.idle.length < IDLE_CONNECTIONS) {
      this.idle.push(conn);
      return;
    }
    try { conn.close(); } catch { /* already closed */ }
  }

  /**
   * A connection configured for a server rather than SQLite's defaults: synchronous NORMAL in WAL
   * mode (OFF for a temporary database), a 32 MiB page cache and reads through a memory map
   * (SQLite's 2 MiB default cache holds only part of a large office's indexes, so every group of
   * events read their pages again: the bulk bench went from ~6,000 to ~7,300 events/s).
   */
  openConnection() {
    const conn = new Database(this.path);
    conn.exec(`PRAGMA synchronous=${this.temporary ? "OFF" : "NORMAL"}; PRAGMA cache_size=-32768; PRAGMA mmap_size=268435456`);
    return conn;
  }

  /**
   * Read-only and write flags of a statement prepared on `stream`'s connection, from
   * sqlite3_stmt_readonly() as exposed by the `sqlite_stmt` virtual table. (EXPLAIN is not used:
   * its output may contain bytes that are not UTF-8, which aborts the libsql native module.)
   * @param {Stream} stream @param {string} sql @param {SqlAnalysis} analysis
   * @returns {StmtInfo}
   */
  stmtInfo(stream, sql, analysis) {
    let info = this.infoCache.get(sql);
    if (info) return info;
    const row = /** @type {unknown[]|undefined} */ (stream.readonlyProbe().all([sql])[0]);
    const engineReadonly = row
      ? Number(row[0]) === 1
      : ["SELECT", "VALUES", "EXPLAIN", "COMMIT", "END", "ROLLBACK", "RELEASE", "SAVEPOINT", "PRAGMA"].includes(analysis.first) ||
        (analysis.first === "BEGIN" && !/\b(IMMEDIATE|EXCLUSIVE)\b/i.test(sql));
    info = {
      readonly: analysis.isExplain || engineReadonly,
      writes: !analysis.isExplain && (!engineReadonly || analysis.first === "REINDEX"),
    };
    if (this.infoCache.size >= 1000) this.infoCache.delete(/** @type {string} */ (this.infoCache.keys().next().value));
    this.infoCache.set(sql, info);
    return info;
  }

  /**
   * Waits, without blocking the event loop, until no other stream of this database holds the write
   * lock, then reserves it for `stream`. So our own streams never run into SQLITE_BUSY.
   * @param {Stream} stream
   */
  async acquireWrite(stream) {
    const deadline = Date.now() + this.server.options.busyTimeoutMs;
    while (this.writer !== null && this.writer !== stream) {
      const left = deadline - Date.now();
      if (left <= 0 || this.closed || stream.closed) {
        throw new HranaError("SQLite error: database is locked (another stream holds a write transaction)", "SQLITE_BUSY");
      }
      await new Promise((resolve) => {
        const done = () => {
          clearTimeout(timer);
          const i = this.writeWaiters.indexOf(done);
          if (i >= 0) this.writeWaiters.splice(i, 1);
          resolve(undefined);
        };
        const timer = setTimeout(done, left);
        this.writeWaiters.push(done);
      });
    }
    this.writer = stream;
  }

  /** @param {Stream} stream */
  releaseWrite(stream) {
    if (this.writer !== stream) return;
    this.writer = null;
    for (const wake of this.writeWaiters.slice()) wake();
  }

  /** Retries `fn` while it throws a retryable SQLITE_BUSY, without blocking the event loop. @template T @param {() => T} fn @returns {Promise<T>} */
  async withBusyRetry(fn) {
    const deadline = Date.now() + this.server.options.busyTimeoutMs;
    let delay = 2;
    for (;;) {
      try {
        return fn();
      } catch (e) {
        const left = deadline - Date.now();
        if (!isRetryableBusy(e) || left <= 0 || this.closed) throw e;
        await sleep(Math.min(delay, left));
        delay = Math.min(delay * 2, 50);
      }
    }
  }

  close() {
    if (this.closed) return;
    for (const stream of [...this.streams]) stream.close();
    this.closed = true;
    for (const wake of this.writeWaiters.slice()) wake();
    try { this.keeper.close(); } catch { /* already closed */ }
  }

  deleteFiles() {
    for (const suffix of ["", "-wal", "-shm", "-journal"]) rmSync(this.path + suffix, { force: true });
  }
}


class Stream {
  /** @param {DbHost} host */
  constructor(host) {
    this.host = host;
    this.conn = host.streamConnection();
    /** ran a statement whose effect outlives the stream on its connection (PRAGMA, ATTACH, TEMP) */
    this.changesSession = false;
    /** @type {Map<number, string>} */
    this.sqls = new Map();
    /** @type {string|null} */
    this.baton = null;
    this.closed = false;
    this.inUse = false;
    /** inside a `BEGIN ... READONLY` transaction */
    this.readonlyTx = false;
    /** a statement of this connection was left active by libsql (see finalizeDroppedStatements) */
    this.needsFinalize = false;
    /** @type {NodeJS.Timeout|undefined} */
    this.timer = undefined;
    host.streams.add(this);
  }

  /**
   * sqlite3_stmt_readonly() of a statement prepared on this connection, looked up by its SQL text
   * (SQLite keeps the text up to the end of the statement, without what follows the `;`).
   */
  readonlyProbe() {
    const kept = connStatements(this.conn);
    if (!kept.ro) {
      kept.ro = this.conn.prepare(
        "SELECT ro FROM sqlite_stmt WHERE substr(?1, 1, length(sql)) = sql ORDER BY length(sql) DESC LIMIT 1",
      );
      kept.ro.raw(true);
    }
    return kept.ro;
  }

  /** [changes(), last_insert_rowid()] of this connection, as bigints. */
  changes() {
    const kept = connStatements(this.conn);
    if (!kept.changes) {
      kept.changes = this.conn.prepare("SELECT changes(), last_insert_rowid()");
      kept.changes.raw(true);
      kept.changes.safeIntegers(true);
    }
    return /** @type {[bigint, bigint]} */ (kept.changes.all()[0]);
  }

  get isAutocommit() {
    return !this.conn.inTransaction;
  }

  /** Closes the stream; an open transaction is rolled back. */
  close() {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    const host = this.host;
    if (this.baton) host.server.batons.delete(this.baton);
    host.streams.delete(this);
    try {
      if (this.conn.open && this.conn.inTransaction) this.conn.exec("ROLLBACK");
    } catch { /* closing rolls back anyway */ }
    host.giveBack(this);
    host.releaseWrite(this);
    if (this.needsFinalize) finalizeDroppedStatements().catch(() => undefined);
  }

  /** Closes an idle stream after `streamIdleMs`; its baton then answers STREAM_EXPIRED. */
  expire() {
    if (this.closed || this.inUse) return;
    const baton = this.baton;
    this.close();
    if (baton) this.host.server.rememberExpired(baton);
  }
}

// ---------------------------------------------------------------------------------------------
// Stream requests

/** @param {Stream} stream @param {unknown} sql @param {unknown} sqlId */
function resolveSql(stream, sql, sqlId) {
  const hasSql = sql !== undefined && sql !== null;
  const hasId = sqlId !== undefined && sqlId !== null;
  if (hasSql && hasId) throw protoError("Only one of `sql` and `sql_id` may be given");
  if (hasSql) {
    if (typeof sql !== "string") throw protoError("`sql` must be a string");
    return sql;
  }
  if (hasId) {
    if (typeof sqlId !== "number") throw protoError("`sql_id` must be an integer");
    const text = stream.sqls.get(sqlId);
    if (text === undefined) throw new HranaError(`SQL text with id ${sqlId} was not found`, "SQL_NOT_FOUND");
    return text;
  }
  throw protoError("One of `sql` and `sql_id` must be given");
}

/** @param {string} sql */
function checkSingleStatement(sql) {
  const analysis = analyzeSql(sql);
  if (analysis.count === 0) throw new HranaError("SQL string does not contain any statement", "SQL_NO_STATEMENT");
  if (analysis.count > 1) throw new HranaError("SQL string contains more than one statement", "SQL_MANY_STATEMENTS");
  return analysis;
}

/** @param {Stream} stream @param {unknown} raw @returns {Stmt} */
function decodeStmt(stream, raw) {
  if (!isObj(raw)) throw protoError("`stmt` must be an object");
  const o = /** @type {Record<string, unknown>} */ (raw);
  const sql = resolveSql(stream, o.sql, o.sql_id);
  if (o.args != null && !Array.isArray(o.args)) throw protoError("`args` must be an array");
  if (o.named_args != null && !Array.isArray(o.named_args)) throw protoError("`named_args` must be an array");
  if (o.want_rows != null && typeof o.want_rows !== "boolean") throw protoError("`want_rows` must be a boolean");
  const args = (/** @type {unknown[]} */ (o.args ?? [])).map(decodeValue);
  /** @type {Map<string, unknown>} */
  const named = new Map();
  for (const na of /** @type {unknown[]} */ (o.named_args ?? [])) {
    if (!isObj(na) || typeof (/** @type {any} */ (na).name) !== "string") throw protoError("Named argument needs a string `name`");
    named.set(/** @type {any} */ (na).name, decodeValue(/** @type {any} */ (na).value));
  }
  return { sql, args, named, wantRows: o.want_rows !== false, analysis: checkSingleStatement(sql) };
}

/**
 * Values for parameters 1..count: a named parameter takes the named argument (with or without its
 * prefix), otherwise the positional argument at its index. Extra arguments are ignored.
 * @param {Stmt} stmt
 */
function bindValues(stmt) {
  const { paramCount, paramNames, paramUsed } = stmt.analysis;
  const out = new Array(paramCount);
  for (let i = 1; i <= paramCount; i++) {
    const name = paramNames[i];
    let v;
    if (name !== undefined && stmt.named.size > 0) {
      v = stmt.named.get(name);
      if (v === undefined) v = stmt.named.get(name.slice(1));
    }
    if (v === undefined) v = stmt.args[i - 1];
    if (v === undefined) {
      if (paramUsed[i] && !stmt.analysis.isExplain) {
        throw new HranaError(`Arguments do not match SQL parameters: value for parameter ${name ?? i} not found`, "ARGS_INVALID");
      }
      v = null;
    }
    out[i - 1] = v;
  }
  return out;
}

/**
 * `BEGIN TRANSACTION READONLY` (the client's "read" mode) is accepted but not enforced by the
 * libsql engine, so the server refuses writing statements inside such a transaction itself.
 * @param {Stream} stream @param {StmtInfo} info
 */
function guardReadonly(stream, info) {
  if (!stream.readonlyTx) return;
  if (!stream.conn.inTransaction) stream.readonlyTx = false;
  else if (!info.readonly) throw new HranaError("SQLite error: attempt to write in a READONLY transaction", "SQLITE_READONLY");
}

/**
 * Runs a prepared statement once, to completion. Readers are always read with all(): run() on a
 * reader steps only once and leaves the statement active.
 * @param {any} prepared @param {unknown[]|undefined} params @param {Stmt} stmt @returns {unknown[][]}
 */
function step(prepared, params, stmt) {
  if (prepared.reader) {
    const rows = params ? prepared.all(params) : prepared.all();
    if (stmt.analysis.isExplain) resetExplain(prepared);
    return rows;
  }
  if (params) prepared.run(params);
  else prepared.run();
  return [];
}

/**
 * Runs a statement, retrying SQLITE_BUSY asynchronously. The retry re-runs the *same* statement
 * object: that completes the statement libsql left active after the failed attempt.
 * @param {Stream} stream @param {any} prepared @param {unknown[]|undefined} params @param {Stmt} stmt
 */
async function stepWithRetry(stream, prepared, params, stmt) {
  const deadline = Date.now() + stream.host.server.options.busyTimeoutMs;
  let delay = 2;
  for (;;) {
    try {
      return step(prepared, params, stmt);
    } catch (e) {
      const left = deadline - Date.now();
      if (!isRetryableBusy(e) || left <= 0 || stream.closed) throw e;
      await sleep(Math.min(delay, left));
      delay = Math.min(delay * 2, 50);
    }
  }
}

/**
 * Executes one statement and builds its StmtResult.
 *
 * Writes go through the database's write gate (one writing stream at a time, others wait
 * asynchronously). A write outside of a transaction runs inside `BEGIN IMMEDIATE ... COMMIT`
 * issued with exec() (which, unlike a prepared statement, never stays active after SQLITE_BUSY);
 * the effect is the same as autocommit.
 * @param {Stream} stream @param {Stmt} stmt
 */
async function executeStmt(stream, stmt) {
  const host = stream.host;
  if (stream.needsFinalize) {
    stream.needsFinalize = false;
    await finalizeDroppedStatements();
  }
  if (stream.closed) throw new HranaError("The stream has been closed", "STREAM_CLOSED");
  const conn = stream.conn;
  const started = performance.now();
  if (stmt.analysis.sessionState) stream.changesSession = true;
  const prepared = prepareSql(conn, stmt.sql);
  const info = host.stmtInfo(stream, stmt.sql, stmt.analysis);
  guardReadonly(stream, info);
  const params = stmt.analysis.paramCount > 0 ? bindValues(stmt) : undefined;
  const cols = prepared.columns().map((c) => ({ name: c.name ?? null, decltype: c.type ?? null }));
  prepared.safeIntegers(true);
  if (prepared.reader) prepared.raw(true);
  /** @type {unknown[][]} */
  let rows = [];
  try {
    if (!info.writes) rows = await stepWithRetry(stream, prepared, params, stmt);
    else {
      await host.acquireWrite(stream);
      if (stream.closed) throw new HranaError("The stream has been closed", "STREAM_CLOSED");
      if (stmt.analysis.first === "BEGIN") {
        await host.withBusyRetry(() => conn.exec(stmt.sql)); // BEGIN IMMEDIATE / EXCLUSIVE
      } else if (!conn.inTransaction && stmt.analysis.wrappable) {
        await host.withBusyRetry(() => conn.exec("BEGIN IMMEDIATE"));
        try {
          rows = step(prepared, params, stmt);
          conn.exec("COMMIT");
        } catch (e) {
          if (conn.inTransaction) {
            try { conn.exec("ROLLBACK"); } catch { /* keep the first error */ }
          }
          throw e;
        }
      } else rows = await stepWithRetry(stream, prepared, params, stmt);
    }
  } catch (e) {
    if (isStuckError(e)) {
      stream.needsFinalize = true;
      forgetStatement(conn, stmt.sql);
    }
    throw e;
  } finally {
    if (!stream.closed) {
      if (!conn.inTransaction) host.releaseWrite(stream);
      if (stmt.analysis.beginsReadonly) stream.readonlyTx = conn.inTransaction;
      else if (!conn.inTransaction) stream.readonlyTx = false;
    }
  }
  // A PRAGMA (foreign_keys, …) shapes the statements prepared after it: what the connection kept
  // prepared, including the rest of this batch (checkParse), is prepared again.
  if (stmt.analysis.sessionState) connStatements(conn).bySql.clear();
  let affected = 0;
  /** @type {string|null} */
  let lastInsertRowid = null;
  if (stmt.analysis.isIud) {
    const [changes, rowid] = stream.changes();
    affected = Number(changes);
    if (stmt.analysis.isInsert) lastInsertRowid = rowid.toString();
  }
  return {
    cols,
    rows: stmt.wantRows ? rows.map((r) => r.map(encodeValue)) : [],
    affected_row_count: affected,
    last_insert_rowid: lastInsertRowid,
    rows_read: rows.length,
    rows_written: affected,
    query_duration_ms: Math.round((performance.now() - started) * 1000) / 1000,
  };
}

/**
 * @param {unknown} cond @param {('ok'|'error'|'skip')[]} outcomes @param {Stream} stream
 * @returns {boolean}
 */
function evalCond(cond, outcomes, stream) {
  if (!isObj(cond)) throw protoError("Batch condition must be an object");
  const c = /** @type {Record<string, any>} */ (cond);
  switch (c.type) {
    case "ok":
    case "error": {
      if (typeof c.step !== "number" || !(c.step >= 0 && c.step < outcomes.length)) {
        throw new HranaError(`Batch condition refers to step ${c.step}, which has not been executed yet`, "BATCH_COND_INVALID");
      }
      return outcomes[c.step] === c.type;
    }
    case "not":
      return !evalCond(c.cond, outcomes, stream);
    case "and":
      if (!Array.isArray(c.conds)) throw protoError("`conds` must be an array");
      return c.conds.every((x) => evalCond(x, outcomes, stream));
    case "or":
      if (!Array.isArray(c.conds)) throw protoError("`conds` must be an array");
      return c.conds.some((x) => evalCond(x, outcomes, stream));
    case "is_autocommit":
      return stream.isAutocommit;
    default:
      throw protoError(`Unknown batch condition type ${JSON.stringify(c.type)}`);
  }
}

/**
 * Decodes a batch and checks that every statement parses, before any of them runs (as sqld does).
 * @param {Stream} stream @param {unknown} batch
 */
function decodeBatch(stream, batch) {
  if (!isObj(batch) || !Array.isArray(/** @type {any} */ (batch).steps)) throw protoError("`batch.steps` must be an array");
  const steps = /** @type {unknown[]} */ (/** @type {any} */ (batch).steps).map((step) => {
    if (!isObj(step)) throw protoError("Batch step must be an object");
    return { condition: /** @type {any} */ (step).condition ?? null, stmt: decodeStmt(stream, /** @type {any} */ (step).stmt) };
  });
  checkParse(stream, steps.map((s) => s.stmt.sql));
  return steps;
}

/** @param {Stream} stream @param {{ condition: unknown, stmt: Stmt }[]} steps */
async function executeBatch(stream, steps) {
  /** @type {('ok'|'error'|'skip')[]} */
  const outcomes = [];
  /** @type {(object|null)[]} */
  const stepResults = [];
  /** @type {(object|null)[]} */
  const stepErrors = [];
  for (const step of steps) {
    let result = null, error = null;
    try {
      if (step.condition === null || evalCond(step.condition, outcomes, stream)) {
        result = await executeStmt(stream, step.stmt);
      }
    } catch (e) {
      error = toErrorObject(e);
    }
    outcomes.push(error ? "error" : result ? "ok" : "skip");
    stepResults.push(result);
    stepErrors.push(error);
  }
  return { step_results: stepResults, step_errors: stepErrors };
}

/** Runs the statements one by one and stops at the first error. @param {Stream} stream @param {string} sql */
async function executeSequence(stream, sql) {
  const stmts = splitSql(sql).map(({ sql: text }) => ({ sql: text, args: [], named: new Map(), wantRows: false, analysis: checkSingleStatement(text) }));
  checkParse(stream, stmts.map((s) => s.sql));
  for (const stmt of stmts) await executeStmt(stream, stmt);
}

/** @param {Stream} stream @param {string} sql */
async function describe(stream, sql) {
  const analysis = checkSingleStatement(sql);
  if (stream.needsFinalize) {
    stream.needsFinalize = false;
    await finalizeDroppedStatements();
  }
  const prepared = prepareSql(stream.conn, sql);
  const cols = prepared.columns().map((c) => ({ name: c.name ?? "", decltype: c.type ?? null }));
  const info = stream.host.stmtInfo(stream, sql, analysis);
  const params = [];
  for (let i = 1; i <= analysis.paramCount; i++) params.push({ name: analysis.paramNames[i] ?? null });
  return { params, cols, is_explain: analysis.isExplain, is_readonly: info.readonly };
}

/**
 * Executes one pipeline request. Errors become `{type: "error"}` results.
 * @param {Stream} stream @param {unknown} req
 */
async function handleStreamRequest(stream, req) {
  try {
    if (!isObj(req) || typeof (/** @type {any} */ (req).type) !== "string") throw protoError("Stream request must be an object with a string `type`");
    const r = /** @type {Record<string, any>} */ (req);
    if (stream.closed && r.type !== "close") throw new HranaError("The stream has been closed", "STREAM_CLOSED");
    /** @type {Record<string, unknown>} */
    let response;
    switch (r.type) {
      case "close":
        stream.close();
        response = { type: "close" };
        break;
      case "execute":
        response = { type: "execute", result: await executeStmt(stream, decodeStmt(stream, r.stmt)) };
        break;
      case "batch":
        response = { type: "batch", result: await executeBatch(stream, decodeBatch(stream, r.batch)) };
        break;
      case "sequence":
        await executeSequence(stream, resolveSql(stream, r.sql, r.sql_id));
        response = { type: "sequence" };
        break;
      case "describe":
        response = { type: "describe", result: await describe(stream, resolveSql(stream, r.sql, r.sql_id)) };
        break;
      case "store_sql": {
        if (typeof r.sql_id !== "number" || !Number.isInteger(r.sql_id)) throw protoError("`sql_id` must be an integer");
        if (typeof r.sql !== "string") throw protoError("`sql` must be a string");
        if (stream.sqls.has(r.sql_id)) throw new HranaError(`SQL text with id ${r.sql_id} already exists`, "SQL_STORE_EXISTS");
        if (stream.sqls.size >= MAX_STORED_SQLS) throw new HranaError("Too many stored SQL texts on this stream", "SQL_STORE_TOO_MANY");
        stream.sqls.set(r.sql_id, r.sql);
        response = { type: "store_sql" };
        break;
      }
      case "close_sql":
        if (typeof r.sql_id !== "number") throw protoError("`sql_id` must be an integer");
        stream.sqls.delete(r.sql_id);
        response = { type: "close_sql" };
        break;
      case "get_autocommit":
        response = { type: "get_autocommit", is_autocommit: stream.isAutocommit };
        break;
      default:
        throw protoError(`Unknown stream request type ${JSON.stringify(r.type)}`);
    }
    return { type: "ok", response };
  } catch (e) {
    return { type: "error", error: toErrorObject(e) };
  }
}

// ---------------------------------------------------------------------------------------------
// The server

/**
 * @typedef {object} ServerOptions
 * @property {number} [port] 0 picks a free port (default 0)
 * @property {string} [host] default 127.0.0.1
 * @property {string} [file] database file; isolated databases live beside it as `<name>.<db>.db`
 * @property {boolean} [memory] in-memory databases (the default when no file is given)
 * @property {string} [authToken] when set, Hrana endpoints require `Authorization: Bearer <token>`
 * @property {number} [streamIdleMs] idle streams are closed (and rolled back) after this (default 15000)
 * @property {number} [busyTimeoutMs] how long a statement retries SQLITE_BUSY (default 5000)
 * @property {number} [maxBodyBytes] request body limit (default 10 MiB)
 * @property {number} [latencyMs] every pipeline and cursor request is answered this much later (a
 *   remote database's round trip, for benchmarks; default 0)
 */

class Server {
  /** @param {Required<Omit<ServerOptions, 'file'|'authToken'|'memory'>> & { file?: string, authToken?: string }} options */
  constructor(options) {
    this.options = options;
    /** @type {Map<string, DbHost>} */
    this.dbs = new Map();
    /** @type {Map<string, Stream>} */
    this.batons = new Map();
    /** @type {Map<string, number>} baton -> expiry time of the "expired" answer */
    this.expiredBatons = new Map();
    /** @type {Map<string, { pipelines: number, requests: number }>} */
    this.counters = new Map();
    this.file = options.file ? resolvePath(options.file) : undefined;
    this.tempDir = this.file ? undefined : mkdtempSync(join(tmpdir(), "libsql-server-"));
    if (this.tempDir) trackTempDir(this.tempDir);
    this.closed = false;
  }

  /** @param {string} name @param {boolean} create */
  getDb(name, create) {
    let db = this.dbs.get(name);
    if (db || !create) return db;
    let path;
    if (this.file) {
      const p = parsePath(this.file);
      path = name === "default" ? this.file : join(p.dir, `${p.name}.${name}.db`);
    } else path = join(/** @type {string} */ (this.tempDir), name === "default" ? "default.db" : `db-${name}.db`);
    db = new DbHost(this, name, path, !this.file);
    this.dbs.set(name, db);
    return db;
  }

  /** @param {string} name */
  counter(name) {
    let c = this.counters.get(name);
    if (!c) this.counters.set(name, (c = { pipelines: 0, requests: 0 }));
    return c;
  }

  /** @param {string} name */
  dropDb(name) {
    const db = this.dbs.get(name);
    if (db) {
      db.close();
      db.deleteFiles();
      this.dbs.delete(name);
    } else if (this.file) {
      // not opened by this process, but may exist on disk from an earlier run
      const p = parsePath(this.file);
      for (const suffix of ["", "-wal", "-shm", "-journal"]) rmSync(join(p.dir, `${p.name}.${name}.db`) + suffix, { force: true });
    }
    this.counters.delete(name);
  }

  /** @param {string} baton */
  rememberExpired(baton) {
    const now = Date.now();
    if (this.expiredBatons.size > 10000) {
      for (const [b, t] of this.expiredBatons) if (t < now || this.expiredBatons.size > 5000) this.expiredBatons.delete(b);
    }
    this.expiredBatons.set(baton, now + EXPIRED_BATON_TTL_MS);
  }

  /** Finds and locks the stream of a baton (or opens a new stream for a null baton). @param {DbHost} db @param {unknown} baton */
  acquire(db, baton) {
    if (baton === null || baton === undefined) {
      const stream = new Stream(db);
      stream.inUse = true;
      return stream;
    }
    if (typeof baton !== "string") throw protoError("`baton` must be a string or null");
    const stream = this.batons.get(baton);
    if (!stream) {
      const expiredUntil = this.expiredBatons.get(baton);
      if (expiredUntil !== undefined && expiredUntil > Date.now()) {
        throw new HranaError("The stream has expired due to inactivity", "STREAM_EXPIRED", 400);
      }
      throw new HranaError("The baton is invalid (unknown, already used, or from a closed stream)", "BATON_INVALID", 400);
    }
    if (stream.host !== db) throw new HranaError("The baton belongs to another database", "BATON_INVALID", 400);
    if (stream.inUse) throw new HranaError("The baton is already in use by another request", "BATON_REUSED", 400);
    this.batons.delete(baton);
    stream.baton = null;
    stream.inUse = true;
    clearTimeout(stream.timer);
    return stream;
  }

  /** Unlocks a stream and hands out a fresh baton (null once closed). @param {Stream} stream */
  release(stream) {
    stream.inUse = false;
    if (stream.closed || stream.host.closed) {
      stream.close();
      return null;
    }
    const baton = randomBytes(24).toString("base64url");
    stream.baton = baton;
    this.batons.set(baton, stream);
    stream.timer = setTimeout(() => stream.expire(), this.options.streamIdleMs);
    stream.timer.unref?.();
    return baton;
  }

  /** @param {DbHost} db @param {unknown} body */
  async pipeline(db, body) {
    if (!isObj(body)) throw protoError("Pipeline body must be a JSON object");
    const b = /** @type {Record<string, unknown>} */ (body);
    if (!Array.isArray(b.requests)) throw protoError("`requests` must be an array");
    const counter = this.counter(db.name);
    counter.pipelines++;
    counter.requests += b.requests.length;
    const stream = this.acquire(db, b.baton);
    const results = [];
    let baton = null;
    try {
      for (const req of b.requests) results.push(await handleStreamRequest(stream, req));
    } finally {
      baton = this.release(stream);
    }
    return { baton, base_url: null, results };
  }

  /** v3 cursor: the batch result as newline-delimited JSON entries. @param {DbHost} db @param {unknown} body */
  async cursor(db, body) {
    if (!isObj(body)) throw protoError("Cursor body must be a JSON object");
    const b = /** @type {Record<string, unknown>} */ (body);
    const counter = this.counter(db.name);
    counter.pipelines++;
    counter.requests += 1;
    const stream = this.acquire(db, b.baton);
    /** @type {object[]} */
    const entries = [];
    let baton = null;
    try {
      let steps;
      try {
        steps = decodeBatch(stream, b.batch);
      } catch (e) {
        // sqld turns a statement it cannot take (unparsable, none or several statements) into a
        // failed HTTP request (500, `{"error": ...}`) and drops the stream with its transaction.
        if (e instanceof HranaError && STMT_ERROR_CODES.has(e.code)) {
          stream.close();
          throw new SqldHttpError(e.message, 500);
        }
        throw e;
      }
      const result = await executeBatch(stream, steps);
      result.step_results.forEach((r, step) => {
        const error = result.step_errors[step];
        if (error) entries.push({ type: "step_error", step, error });
        else if (r) {
          const res = /** @type {any} */ (r);
          entries.push({ type: "step_begin", step, cols: res.cols });
          for (const row of res.rows) entries.push({ type: "row", row });
          entries.push({ type: "step_end", affected_row_count: res.affected_row_count, last_insert_rowid: res.last_insert_rowid });
        }
      });
    } catch (e) {
      if (e instanceof SqldHttpError) throw e;
      entries.push({ type: "error", error: toErrorObject(e) });
    } finally {
      baton = this.release(stream);
    }
    return [{ baton, base_url: null }, ...entries].map((x) => JSON.stringify(x)).join("\n") + "\n";
  }

  stats() {
    /** @type {Record<string, { pipelines: number, requests: number, streamsOpen: number, connectionsOpened: number, connectionsReused: number }>} */
    const databases = {};
    const names = new Set([...this.dbs.keys(), ...this.counters.keys()]);
    let total = 0;
    for (const name of names) {
      const c = this.counters.get(name) ?? { pipelines: 0, requests: 0 };
      const db = this.dbs.get(name);
      databases[name] = { pipelines: c.pipelines, requests: c.requests, streamsOpen: db?.streams.size ?? 0, connectionsOpened: db?.opened ?? 0, connectionsReused: db?.reused ?? 0 };
      total += c.pipelines;
    }
    return { databases, total: { pipelines: total } };
  }

  /** @param {string} [name] */
  resetStats(name) {
    if (name === undefined) this.counters.clear();
    else this.counters.delete(name);
  }

  closeAll() {
    if (this.closed) return;
    this.closed = true;
    for (const db of this.dbs.values()) db.close();
    this.dbs.clear();
    this.batons.clear();
    if (this.tempDir) {
      rmSync(this.tempDir, { recursive: true, force: true });
      liveTempDirs.delete(this.tempDir);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP

/** @param {import('node:http').ServerResponse} res @param {number} status @param {unknown} body */
function sendJson(res, status, body) {
  const data = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(data) });
  res.end(data);
}

/** @param {import('node:http').ServerResponse} res @param {number} status @param {string} text */
function sendText(res, status, text) {
  res.writeHead(status, { "content-type": "text/plain", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/** @param {import('node:http').ServerResponse} res @param {HranaError} e */
const sendError = (res, e) => sendJson(res, e.status, { message: e.message, code: e.code });

/**
 * Reads the whole body, or rejects with a 413 HranaError once it is larger than `max` (the rest is
 * drained and discarded so that the client can read the answer).
 * @param {import('node:http').IncomingMessage} req @param {number} max @returns {Promise<Buffer>}
 */
function readBody(req, max) {
  return new Promise((resolve, reject) => {
    const tooLarge = () => new HranaError(`Request body is larger than ${max} bytes`, "BODY_TOO_LARGE", 413);
    const declared = Number(req.headers["content-length"]);
    if (Number.isFinite(declared) && declared > max) {
      drain(req, max);
      reject(tooLarge());
      return;
    }
    /** @type {Buffer[]} */
    const chunks = [];
    let size = 0;
    const onData = (/** @type {Buffer} */ chunk) => {
      size += chunk.length;
      if (size > max) {
        req.off("data", onData);
        req.off("end", onEnd);
        chunks.length = 0;
        drain(req, max);
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => resolve(Buffer.concat(chunks));
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", reject);
  });
}

/** Discards the rest of a request body (bounded, then the socket is dropped). @param {import('node:http').IncomingMessage} req @param {number} max */
function drain(req, max) {
  let drained = 0;
  req.on("data", (/** @type {Buffer} */ chunk) => {
    drained += chunk.length;
    if (drained > 8 * max + 1024 * 1024) req.socket.destroy();
  });
  req.resume();
}

/** @param {string|undefined} header @param {string} token */
function authorized(header, token) {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? "");
  if (!m) return false;
  const a = Buffer.from(m[1].trim());
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** @param {Server} state @param {import('node:http').IncomingMessage} req @param {import('node:http').ServerResponse} res */
async function route(state, req, res) {
  const url = new URL(req.url ?? "/", "http://localhost");
  const path = url.pathname;
  const method = req.method ?? "GET";
  res.setHeader("access-control-allow-origin", "*");
  if (method === "OPTIONS") {
    res.writeHead(204, {
      "access-control-allow-methods": "GET, POST, DELETE, OPTIONS",
      "access-control-allow-headers": "authorization, content-type",
      "access-control-max-age": "86400",
    });
    res.end();
    return;
  }
  const notFound = () => sendError(res, new HranaError(`Not found: ${method} ${path}`, "NOT_FOUND", 404));
  const methodNotAllowed = () => sendError(res, new HranaError(`Method ${method} is not allowed on ${path}`, "METHOD_NOT_ALLOWED", 405));

  if (path === "/health") return method === "GET" || method === "HEAD" ? sendText(res, 200, "ok") : methodNotAllowed();
  if (path === "/version") return method === "GET" ? sendText(res, 200, VERSION) : methodNotAllowed();
  if (path === "/dev/stats") return method === "GET" ? sendJson(res, 200, state.stats()) : methodNotAllowed();
  if (path === "/dev/stats/reset") {
    if (method !== "POST") return methodNotAllowed();
    const name = url.searchParams.get("db");
    state.resetStats(name ?? undefined);
    return sendJson(res, 200, state.stats());
  }

  let dbName = "default";
  let rest = path;
  const m = /^\/db\/([^/]*)(\/.*)?$/.exec(path);
  if (m) {
    if (!DB_NAME_RE.test(m[1])) return sendError(res, new HranaError("Database names match [A-Za-z0-9_-]{1,64}", "INVALID_DATABASE_NAME", 400));
    if (m[2] === undefined) {
      return sendError(res, new HranaError(`Database URLs need a trailing slash: /db/${m[1]}/`, "NOT_FOUND", 404));
    }
    dbName = m[1];
    rest = m[2];
  }

  const hrana = /^\/v[23](-protobuf)?(\/|$)/.test(rest);
  if (rest.startsWith("/v3-protobuf") || rest.startsWith("/v2-protobuf")) return notFound();
  if ((hrana || (m && rest === "/" && method === "DELETE")) && state.options.authToken !== undefined) {
    if (!authorized(req.headers.authorization, state.options.authToken)) {
      req.resume();
      return sendError(res, new HranaError("Unauthorized: a valid `Authorization: Bearer <token>` header is required", "UNAUTHORIZED", 401));
    }
  }

  if (rest === "/") {
    if (method === "DELETE") {
      if (!m || dbName === "default") return sendError(res, new HranaError("The default database cannot be dropped", "INVALID_DATABASE_NAME", 400));
      state.dropDb(dbName);
      return sendJson(res, 200, { dropped: dbName });
    }
    if (method === "GET" || method === "HEAD") return sendText(res, 200, "Hello, this is a local libSQL server (Hrana over HTTP, v2 and v3, JSON)");
    return methodNotAllowed();
  }
  if (rest === "/v2" || rest === "/v3" || rest === "/v2/" || rest === "/v3/") {
    return method === "GET" || method === "HEAD" ? sendText(res, 200, `Hrana over HTTP ${rest.slice(1, 3)} (JSON)`) : methodNotAllowed();
  }
  const isPipeline = rest === "/v2/pipeline" || rest === "/v3/pipeline";
  const isCursor = rest === "/v3/cursor";
  if (!isPipeline && !isCursor) return notFound();
  if (method !== "POST") return methodNotAllowed();

  let body;
  try {
    const raw = await readBody(req, state.options.maxBodyBytes);
    try {
      body = JSON.parse(raw.toString("utf8"));
    } catch (e) {
      throw protoError(`Could not parse the JSON request body: ${/** @type {Error} */ (e).message}`);
    }
  } catch (e) {
    if (e instanceof HranaError) {
      if (e.status === 413) res.setHeader("connection", "close");
      return sendError(res, e);
    }
    throw e;
  }
  // A simulated network round trip (--latency-ms): waited asynchronously, before the statements
  // run, so other requests go on meanwhile, as they would with a remote database.
  if (state.options.latencyMs > 0) await new Promise((r) => setTimeout(r, state.options.latencyMs));
  if (state.closed) return sendError(res, new HranaError("The server is shutting down", "SERVER_CLOSED", 503));
  const db = state.getDb(dbName, true);
  if (!db) return notFound();
  try {
    if (isPipeline) return sendJson(res, 200, await state.pipeline(db, body));
    const text = await state.cursor(db, body);
    res.writeHead(200, { "content-type": "text/plain", "content-length": Buffer.byteLength(text) });
    res.end(text);
  } catch (e) {
    if (e instanceof HranaError) return sendError(res, e);
    if (e instanceof SqldHttpError) return sendJson(res, e.status, { error: e.message });
    throw e;
  }
}

/**
 * Starts the server.
 * @param {ServerOptions} [options]
 * @returns {Promise<{ url: string, port: number, close: () => Promise<void>, stats: () => ReturnType<Server['stats']> }>}
 */
export async function startServer({
  port = 0,
  host = "127.0.0.1",
  file,
  memory,
  authToken,
  streamIdleMs = 15000,
  busyTimeoutMs = 5000,
  maxBodyBytes = 10 * 1024 * 1024,
  latencyMs = 0,
} = {}) {
  if (file && memory) throw new Error("Give either `file` or `memory`, not both");
  if (!Number.isInteger(latencyMs) || latencyMs < 0) throw new Error("`latencyMs` must be an integer >= 0");
  const state = new Server({ port, host, file, authToken, streamIdleMs, busyTimeoutMs, maxBodyBytes, latencyMs });
  try {
    state.getDb("default", true); // fail early on an unusable --file
  } catch (e) {
    state.closeAll();
    throw e;
  }
  const http = createServer((req, res) => {
    route(state, req, res).catch((e) => {
      if (!res.headersSent) sendJson(res, 500, { message: String(e?.message ?? e), code: "INTERNAL_ERROR" });
      else res.destroy();
    });
  });
  // Clients keep connections alive and reuse them: a server that closes an idle connection just as
  // a client sends on it makes that request fail ("connection lost"). Idle connections stay open
  // longer than any client's pool keeps them.
  http.keepAliveTimeout = 120_000;
  http.headersTimeout = 121_000;
  http.on("clientError", (_err, socket) => {
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
    else socket.destroy();
  });
  await new Promise((resolve, reject) => {
    http.once("error", reject);
    http.listen(port, host, () => {
      http.off("error", reject);
      resolve(undefined);
    });
  }).catch((e) => {
    state.closeAll();
    throw e;
  });
  const address = /** @type {import('node:net').AddressInfo} */ (http.address());
  const urlHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;
  let closing;
  return {
    url: `http://${urlHost}:${address.port}`,
    port: address.port,
    stats: () => state.stats(),
    close() {
      closing ??= new Promise((resolve) => {
        http.close(() => resolve(undefined));
        http.closeAllConnections();
        state.closeAll();
      });
      return closing;
    },
  };
}
