// Shared pieces of the emulator: ids, form decoding, Stripe's error shapes, parameter checking
// (unknown parameters, expansions), list objects.
import { randomBytes } from "node:crypto";

export const API_VERSION = "2026-02-25.clover";

const ID_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
export function newId(prefix) {
  const bytes = randomBytes(24);
  let s = "";
  for (const b of bytes) s += ID_CHARS[b % ID_CHARS.length];
  return `${prefix}_${s}`;
}
export const clone = (v) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));

/** Deterministic PRNG (mulberry32). */
export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
export function seedToInt(seed) {
  if (typeof seed === "number") return seed;
  let h = 2166136261;
  for (const c of String(seed)) h = Math.imul(h ^ c.charCodeAt(0), 16777619);
  return h >>> 0;
}

// ---------------------------------------------------------------------------------------------
// Form decoding with Stripe bracket notation: a[b][0][c]=x, expand[]=y
// ---------------------------------------------------------------------------------------------
export function parseForm(text) {
  const root = {};
  if (!text) return root;
  for (const part of text.split("&")) {
    if (!part) continue;
    const eq = part.indexOf("=");
    const rawKey = eq < 0 ? part : part.slice(0, eq);
    const rawVal = eq < 0 ? "" : part.slice(eq + 1);
    const key = decodeURIComponent(rawKey.replace(/\+/g, " "));
    const val = decodeURIComponent(rawVal.replace(/\+/g, " "));
    const m = /^([^[\]]+)((?:\[[^\]]*\])*)$/.exec(key);
    const segs = m ? [m[1], ...[...m[2].matchAll(/\[([^\]]*)\]/g)].map((x) => x[1])] : [key];
    let node = root;
    for (let i = 0; i < segs.length; i++) {
      let seg = segs[i];
      const last = i === segs.length - 1;
      if (seg === "") {
        // expand[]=x → append
        seg = String(Object.keys(node).length);
      }
      if (last) node[seg] = val;
      else {
        if (node[seg] === undefined || typeof node[seg] !== "object") node[seg] = {};
        node = node[seg];
      }
    }
  }
  return arrayify(root);
}
function arrayify(v) {
  if (v === null || typeof v !== "object") return v;
  const keys = Object.keys(v);
  for (const k of keys) v[k] = arrayify(v[k]);
  if (keys.length > 0 && keys.every((k) => /^\d+$/.test(k))) {
    return keys.sort((a, b) => Number(a) - Number(b)).map((k) => v[k]);
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------
export class ApiError extends Error {
  constructor(status, error, { store = true, headers = {} } = {}) {
    super(error.message);
    this.status = status;
    this.error = error;
    this.store = store; // whether an idempotent result is saved for it
    this.headers = headers;
  }
}
/** Validation errors: the endpoint did not begin executing, so no idempotent result is saved (Stripe). */
export const missing = (param) =>
  new ApiError(
    400,
    { type: "invalid_request_error", code: "parameter_missing", param, message: `Missing required param: ${param}.` },
    { store: false },
  );
export const unknownParameter = (param) =>
  new ApiError(
    400,
    { type: "invalid_request_error", code: "parameter_unknown", param, message: `Received unknown parameter: ${param}` },
    { store: false },
  );
/** A parameter the pinned API version has but this emulator does not emulate: refused, and said so. */
export const notEmulated = (param) =>
  new ApiError(
    400,
    { type: "invalid_request_error", code: "emulator_unsupported_parameter", param, message: `The Stripe emulator does not emulate the parameter ${param} (Stripe accepts it).` },
    { store: false },
  );
export const invalid = (message, extra = {}, opts = {}) => new ApiError(400, { type: "invalid_request_error", message, ...extra }, opts);
export const invalidParam = (message, param, extra = {}) => invalid(message, { param, ...extra }, { store: false });
export const notFound = (kind, id, param = "id") =>
  new ApiError(404, {
    type: "invalid_request_error",
    code: "resource_missing",
    param,
    message: `No such ${kind}: '${id}'`,
  });

export function toInt(v, param) {
  if (v === undefined || v === null || v === "") return undefined;
  const n = typeof v === "number" ? v : Number(v);
  if (!Number.isInteger(n)) throw invalidParam(`Invalid integer: ${v}`, param, { code: "parameter_invalid_integer" });
  return n;
}
export function toBool(v, param) {
  if (v === undefined || v === "") return undefined;
  if (v === true || v === "true") return true;
  if (v === false || v === "false") return false;
  throw invalidParam(`Invalid boolean: ${v}`, param, { code: "parameter_invalid_boolean" });
}
/** Stripe metadata semantics: empty string unsets a key; empty string for the whole hash clears it. */
export function mergeMetadata(current, update) {
  if (update === undefined) return current ?? {};
  if (update === "") return {};
  const out = { ...(current ?? {}) };
  if (typeof update !== "object") return out;
  for (const [k, v] of Object.entries(update)) {
    if (v === "") delete out[k];
    else out[k] = String(v);
  }
  return out;
}
export const nullAddress = () => ({ city: null, country: null, line1: null, line2: null, postal_code: null, state: null });

// ---------------------------------------------------------------------------------------------
// Parameters: each endpoint declares the parameters the pinned version's SDK types give it.
//   LEAF        a value (string, number, boolean, or "" where Stripe accepts an empty value)
//   HASH        a free-form hash (metadata): any key
//   NOT         a parameter Stripe has that the emulator does not emulate (refused, saying so)
//   { k: spec } a nested object; [spec] a list of spec
// Anything else is refused as Stripe does: 400 parameter_unknown, `param` its bracketed name.
// ---------------------------------------------------------------------------------------------
export const LEAF = "leaf";
export const HASH = "hash";
export const NOT = "not-emulated";

export function checkParams(params, spec) {
  walk(params, spec, "");
}
function walk(value, spec, path) {
  if (spec === LEAF || spec === HASH) return;
  if (spec === NOT) throw notEmulated(path);
  if (value === "" || value === null || value === undefined) return; // an emptied value (Emptyable)
  if (Array.isArray(spec)) {
    if (typeof value === "object" && !Array.isArray(value)) throw invalidParam("Invalid array", path);
    const items = Array.isArray(value) ? value : [value];
    items.forEach((v, i) => walk(v, spec[0], `${path}[${i}]`));
    return;
  }
  if (typeof value !== "object") return;
  for (const k of Object.keys(value)) {
    const name = path ? `${path}[${k}]` : k;
    if (!Object.hasOwn(spec, k)) throw unknownParameter(name);
    walk(value[k], spec[k], name);
  }
}

/** The `expand` list of a request, each entry one of `allowed` (else Stripe's refusal). */
export function expansions(params, allowed = []) {
  const list = params.expand === undefined || params.expand === "" ? [] : Array.isArray(params.expand) ? params.expand : [params.expand];
  for (const e of list) {
    if (!allowed.includes(String(e))) throw invalidParam(`This property cannot be expanded (${e}).`, "expand");
  }
  return new Set(list.map(String));
}

/** A list object as the pinned version has it (no `total_count`). */
export const listOf = (data, url, hasMore = false) => ({ object: "list", data, has_more: hasMore, url });

/** One page of `items` (oldest first, as kept) under Stripe's cursor parameters; newest first unless `inOrder`. */
export function page(items, params, url, { inOrder = false } = {}) {
  const limit = toInt(params.limit, "limit") ?? 10;
  if (limit < 1 || limit > 100) throw invalidParam("Invalid limit: must be between 1 and 100", "limit");
  let ordered = inOrder ? [...items] : [...items].reverse();
  if (params.starting_after) {
    const i = ordered.findIndex((x) => x.id === params.starting_after);
    if (i < 0) throw notFound("object", params.starting_after, "starting_after");
    ordered = ordered.slice(i + 1);
  } else if (params.ending_before) {
    const i = ordered.findIndex((x) => x.id === params.ending_before);
    if (i < 0) throw notFound("object", params.ending_before, "ending_before");
    const before = ordered.slice(0, i);
    return listOf(before.slice(Math.max(0, before.length - limit)), url, before.length > limit);
  }
  return listOf(ordered.slice(0, limit), url, ordered.length > limit);
}

/** A list's common parameters (SDK: PaginationParams). */
export const PAGINATION = { ending_before: LEAF, limit: LEAF, starting_after: LEAF };
