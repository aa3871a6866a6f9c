// temporary: CPU profile of the user workerd during a load phase
import { execSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import WebSocket from "ws";
import { startStack } from "./lib/stack.mjs";
import { apiClient } from "./lib/api.mjs";
import { now } from "./lib/clock.mjs";
import { activate, load, newPlan, onboard, reportEvents } from "./lib/bench-load.mjs";
const mode = process.argv[2] ?? "bulk";
const log = (s) => console.error(s);
const stack = await startStack({ stripe: false, log });
try {
  const ps = execSync("ps -eo pid,args | grep [w]orkerd").toString();
  console.error(ps.split("\n").map((l) => l.slice(0, 300)).join("\n"));
  const api = apiClient(stack.base, stack.token("platform_admin"));
  const plan = await newPlan(api);
  const thisMonth = new Date(now()).toISOString().slice(0, 10);
  const office = await onboard(api, plan.id, thisMonth);
  const at = () => new Date(now() - 60_000).toISOString();
  await load((c, n) => activate(stack, office.id, `warm-${c}-${n}`, at()), 2, 32);
  // inspector ports
  const upid = ps.split("\n").find((l) => l.includes("inspector-addr")).trim().split(" ")[0];
  const ss = execSync("ss -ltnp").toString().split("\n").filter((l) => l.includes(`pid=${upid},`));
  const ports = ss.map((l) => l.match(/:(\d+)\s+\S+:\*/)?.[1]).filter(Boolean);
  console.error("inspector ports", ports);
  const targets = [];
  for (const p of ports) { try { const list = await (await fetch(`http://127.0.0.1:${p}/json/list`)).json(); for (const t of list) targets.push(t); } catch (e) { console.error(p, e.message); } }
  console.error(targets.map((t) => `${t.title} ${t.url} ${t.webSocketDebuggerUrl}`).join("\n"));
  const t = targets.find((t) => /core:user|worker/i.test(t.title ?? "")) ?? targets[0];
  const ws = new WebSocket(t.webSocketDebuggerUrl);
  await new Promise((r) => ws.on("open", r));
  let id = 0; const pending = new Map();
  ws.on("message", (d) => { const m = JSON.parse(d); if (m.id && pending.has(m.id)) { pending.get(m.id)(m); pending.delete(m.id); } });
  const send = (method, params = {}) => new Promise((r) => { const i = ++id; pending.set(i, r); ws.send(JSON.stringify({ id: i, method, params })); });
  await send("Profiler.enable"); await send("Profiler.setSamplingInterval", { interval: 200 }); await send("Profiler.start");
  let b = 0; let applied = 0; const started = Date.now();
  let r;
  if (mode === "bulk") r = await load(async () => { const n = b++; const res = await reportEvents(stack, office.id, Array.from({ length: 1000 }, (_, i) => ({ patientId: `bulk-${n}-${i}`, kind: "activate", occurredAt: at(), idempotencyKey: `bulk-${n}-${i}` }))); if (res.ok) applied += (await res.clone().json()).counts.applied; return res; }, 8, 4);
  else if (mode === "health") r = await load(() => fetch(`${stack.base}/health`, { headers: { "accept-encoding": "identity" } }), 8, 32);
  else r = await load((_, n) => activate(stack, office.id, `one-${n}`, at()), 8, 32);
  const stop = await send("Profiler.stop");
  console.error(JSON.stringify(r), "events/s", Math.round(applied / ((Date.now() - started) / 1000)));
  writeFileSync(`/tmp/prof-${mode}.cpuprofile`, JSON.stringify(stop.result.profile));
  ws.close();
  execSync("cp .wrangler/tmp/dev-*/index.js /tmp/devbundle.js || true");
  console.error(stack.workerLog().split("\n").filter((l) => l.includes("ROWS")).slice(-5).join("\n"));
} finally { await stack.stop(); }
