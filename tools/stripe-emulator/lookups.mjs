// Look-ups: GET /v1/customers (list, `email` filter), GET /v1/customers/search (Stripe's search
// query language, the subset below), GET /v1/invoices (list, `customer` / `status` /
// `collection_method` filters). Registered before customers.mjs, so `/v1/customers/search` is not
// read as a customer id.
//
// Search (docs.stripe.com/search): `field:value` clauses (values quoted with ' or "), a `-` before a
// clause negates it, `field~"text"` is a substring match (3 characters at least), and clauses join
// with AND or with OR, never both in one query. Customer query fields: email, name, phone,
// metadata["key"], created (`created>N`, `>=`, `<`, `<=`, `:`). Results: a `search_result` with
// `has_more` and `next_page` (a cursor for `page`), newest first. Search is eventually consistent
// on Stripe ("data is searchable in less than a minute"): an object becomes searchable
// `searchDelayMs` of the emulator's clock after its creation (default 0).
import { LEAF, NOT, PAGINATION, clone, expansions, invalidParam, page, toInt } from "./common.mjs";

const CUSTOMER_LIST = { ...PAGINATION, created: NOT, email: LEAF, expand: [LEAF], test_clock: NOT };
const CUSTOMER_SEARCH = { expand: [LEAF], limit: LEAF, page: LEAF, query: LEAF };
const INVOICE_LIST = { ...PAGINATION, collection_method: LEAF, created: NOT, customer: LEAF, customer_account: NOT, due_date: NOT, expand: [LEAF], status: LEAF, subscription: NOT };
const INVOICE_STATUSES = ["draft", "open", "paid", "uncollectible", "void"];

const badQuery = (why) => invalidParam(`Invalid search query: ${why}`, "query");

/** Parses a query of the supported subset into { join: "AND" | "OR", clauses: [{ field, key, op, value, negated }] }. */
export function parseSearchQuery(text, fields) {
  const q = String(text ?? "").trim();
  if (q === "") throw badQuery("the query is empty.");
  const clauses = [];
  const joins = new Set();
  let i = 0;
  const skipSpace = () => {
    while (i < q.length && /\s/.test(q[i])) i++;
  };
  const quoted = () => {
    const quote = q[i];
    if (quote !== "'" && quote !== '"') throw badQuery(`expected a quoted value at position ${i}.`);
    let out = "";
    for (i++; i < q.length && q[i] !== quote; i++) {
      if (q[i] === "\\" && i + 1 < q.length) i++;
      out += q[i];
    }
    if (q[i] !== quote) throw badQuery("unterminated quoted value.");
    i++;
    return out;
  };
  for (;;) {
    skipSpace();
    const negated = q[i] === "-";
    if (negated) i++;
    const name = /^[a-z_]+/.exec(q.slice(i))?.[0];
    if (!name) throw badQuery(`expected a field at position ${i}.`);
    i += name.length;
    let key = null;
    if (q[i] === "[") {
      i++;
      key = quoted();
      if (q[i] !== "]") throw badQuery(`expected ] at position ${i}.`);
      i++;
    }
    if (!fields[name] || (fields[name] === "hash") !== (key !== null)) throw badQuery(`the field ${name}${key !== null ? "[…]" : ""} is not supported for this resource.`);
    const op = /^(>=|<=|:|~|>|<)/.exec(q.slice(i))?.[0];
    if (!op) throw badQuery(`expected an operator after ${name} at position ${i}.`);
    i += op.length;
    let value;
    if (fields[name] === "number") {
      const num = /^\d+/.exec(q.slice(i))?.[0];
      if (!num || op === "~") throw badQuery(`${name} takes a number with :, >, >=, < or <=.`);
      i += num.length;
      value = Number(num);
    } else {
      if ([">", "<", ">=", "<="].includes(op)) throw badQuery(`${name} is a string field: use : or ~.`);
      value = quoted();
      if (op === "~" && value.length < 3) throw badQuery("a substring match needs at least 3 characters.");
    }
    clauses.push({ field: name, key, op, value, negated });
    skipSpace();
    if (i >= q.length) break;
    const join = /^(AND|OR)\s/.exec(q.slice(i))?.[1];
    if (!join) throw badQuery(`expected AND or OR at position ${i}.`);
    joins.add(join);
    i += join.length;
  }
  if (joins.size > 1) throw badQuery("AND and OR cannot be combined in one query.");
  return { join: [...joins][0] ?? "AND", clauses };
}

function matches(obj, { join, clauses }) {
  const test = (c) => {
    const actual = c.key !== null ? obj[c.field]?.[c.key] : obj[c.field];
    let ok;
    if (typeof c.value === "number") {
      const n = Number(actual);
      ok = c.op === ":" ? n === c.value : c.op === ">" ? n > c.value : c.op === ">=" ? n >= c.value : c.op === "<" ? n < c.value : n <= c.value;
    } else if (actual === null || actual === undefined) ok = false;
    else if (c.op === "~") ok = String(actual).toLowerCase().includes(c.value.toLowerCase());
    else ok = String(actual).toLowerCase() === c.value.toLowerCase();
    return c.negated ? !ok : ok;
  };
  return join === "OR" ? clauses.some(test) : clauses.every(test);
}

/** One page of search results (newest first); the cursor is the offset, opaque to clients. */
function searchPage(items, p, url) {
  const limit = toInt(p.limit, "limit") ?? 10;
  if (limit < 1 || limit > 100) throw invalidParam("Invalid limit: must be between 1 and 100", "limit");
  let offset = 0;
  if (p.page !== undefined && p.page !== "") {
    const decoded = /^o(\d+)$/.exec(Buffer.from(String(p.page), "base64url").toString());
    if (!decoded) throw invalidParam("Invalid page: use the next_page value of a previous response.", "page");
    offset = Number(decoded[1]);
  }
  const data = items.slice(offset, offset + limit);
  const hasMore = items.length > offset + limit;
  return { object: "search_result", data, has_more: hasMore, next_page: hasMore ? Buffer.from(`o${offset + limit}`).toString("base64url") : null, url };
}

export function registerLookups(app, { searchDelayMs = 0 } = {}) {
  const { route, state, clock } = app;
  const searchable = (o) => o.created * 1000 + searchDelayMs <= clock.nowMs();

  route("GET", "/v1/customers", CUSTOMER_LIST, (p) => {
    expansions(p);
    const all = [...state.customers.values()].filter((c) => p.email === undefined || c.email === p.email);
    const out = page(all, p, "/v1/customers");
    out.data = clone(out.data);
    return out;
  });
  route("GET", "/v1/customers/search", CUSTOMER_SEARCH, (p) => {
    expansions(p);
    const query = parseSearchQuery(p.query, { email: "string", name: "string", phone: "string", metadata: "hash", created: "number" });
    const found = [...state.customers.values()].filter((c) => searchable(c) && matches(c, query)).reverse();
    return searchPage(clone(found), p, "/v1/customers/search");
  });
  route("GET", "/v1/invoices", INVOICE_LIST, (p) => {
    const expand = expansions(p, ["data.payments"]);
    if (p.status !== undefined && !INVOICE_STATUSES.includes(p.status)) throw invalidParam(`Invalid status: must be one of ${INVOICE_STATUSES.join(", ")}`, "status");
    if (p.collection_method !== undefined && !["charge_automatically", "send_invoice"].includes(p.collection_method)) {
      throw invalidParam("Invalid collection_method: must be one of charge_automatically or send_invoice", "collection_method");
    }
    const all = [...state.invoices.values()].filter(
      (inv) =>
        (p.customer === undefined || inv.customer === p.customer) &&
        (p.status === undefined || inv.status === p.status) &&
        (p.collection_method === undefined || inv.collection_method === p.collection_method),
    );
    const out = page(all, p, "/v1/invoices");
    const inner = new Set(expand.has("data.payments") ? ["payments"] : []);
    out.data = out.data.map((inv) => app.invoices.publicInvoice(inv, inner));
    return out;
  });
}
