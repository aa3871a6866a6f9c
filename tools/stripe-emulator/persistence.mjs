// The optional state file (README.md, "State across restarts"): every object map, the
// idempotency records and the clock's offset, saved shortly after changes and on close.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";

export const STATE_FORMAT = "stripe-emulator-state";
export const STATE_VERSION = 1;
/** Maps every state file has. */
export const STATE_MAPS = ["customers", "invoices", "charges", "paymentIntents", "refunds", "sessions", "events", "idempotency"];
/** Maps added later: absent from older files, then empty. */
export const OPTIONAL_MAPS = ["products", "webhookEndpoints", "portalConfigurations", "paymentMethods", "paymentIntentStates", "checkoutSessions", "setupIntents", "taxRates", "taxRegistrations", "creditNotes", "coupons", "discounts"];

/** The state file of a `state` option: a `.json` path (or an existing file) as is, else `<dir>/state.json`. */
export function stateFilePath(path) {
  const p = resolve(path);
  if (/\.json$/i.test(p) || (existsSync(p) && statSync(p).isFile())) return p;
  return join(p, "state.json");
}

/** Thrown when a state file exists but cannot be loaded; the emulator does not start. */
export class StateFileError extends Error {
  constructor(file, reason) {
    super(`the state file ${file} is unreadable (${reason}); \`npm run dev -- --fresh\` starts the local stack over (or move the file away)`);
    this.name = "StateFileError";
    this.file = file;
  }
}

/** Reads a state file: null when there is none; throws StateFileError when it is unusable. */
export function readStateFile(file) {
  if (!existsSync(file)) return null;
  let data;
  try {
    data = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new StateFileError(file, e?.code ? String(e.code) : `not JSON: ${e?.message ?? e}`);
  }
  if (!data || typeof data !== "object" || data.format !== STATE_FORMAT) throw new StateFileError(file, "not a Stripe emulator state file");
  if (data.version !== STATE_VERSION) throw new StateFileError(file, `format version ${data.version}, this emulator reads ${STATE_VERSION}`);
  for (const k of [...STATE_MAPS, "pendingWebhooks"]) {
    if (!Array.isArray(data[k])) throw new StateFileError(file, `"${k}" is missing or not a list`);
  }
  for (const k of OPTIONAL_MAPS) {
    if (data[k] !== undefined && !Array.isArray(data[k])) throw new StateFileError(file, `"${k}" is not a list`);
  }
  if (data.clockOffsetMs !== undefined && !Number.isFinite(data.clockOffsetMs)) throw new StateFileError(file, `"clockOffsetMs" is not a number`);
  return data;
}

/** Writes the state file atomically: a temporary file, fsync, rename over the old one, fsync the folder. */
export function writeStateFile(file, text) {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = openSync(tmp, "w", 0o600);
  try {
    writeFileSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  try {
    const dir = openSync(dirname(file), "r");
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  } catch {
    // not every platform can fsync a directory
  }
}

/** Removes leftovers of a save interrupted by a crash (the state file itself is never half-written). */
export function removeLeftovers(file) {
  const dir = dirname(file);
  const prefix = `${basename(file)}.tmp-`;
  if (existsSync(dir)) for (const f of readdirSync(dir)) if (f.startsWith(prefix)) rmSync(join(dir, f), { force: true });
}

/** Loads a read state file's maps into `state` (in place). */
export function loadInto(state, file, loaded) {
  try {
    for (const k of [...STATE_MAPS, ...OPTIONAL_MAPS]) {
      state[k].clear();
      for (const [id, v] of loaded[k] ?? []) state[k].set(id, v);
    }
  } catch (e) {
    throw new StateFileError(file, `malformed: ${e?.message ?? e}`);
  }
}

/**
 * Saving: at most `delayMs` after a change (longer when one save is slow) and on `saveNow`.
 * `snapshot()` gives the object to write.
 */
export function createSaver({ file, delayMs, snapshot, isClosed }) {
  let saveTimer = null;
  let dirty = false;
  let lastSaveMs = 0;
  function saveNow() {
    if (saveTimer) clearTimeout(saveTimer);
    saveTimer = null;
    if (!file || !dirty) return;
    dirty = false;
    const started = Date.now();
    try {
      writeStateFile(file, JSON.stringify(snapshot()));
    } catch (e) {
      dirty = true;
      console.error(`[stripe-emulator] could not save the state to ${file}: ${e?.message ?? e}`);
    }
    lastSaveMs = Date.now() - started;
  }
  function changed() {
    if (!file || isClosed()) return;
    dirty = true;
    if (!saveTimer) {
      saveTimer = setTimeout(saveNow, Math.max(delayMs, 5 * lastSaveMs));
      saveTimer.unref?.();
    }
  }
  return { saveNow, changed };
}
