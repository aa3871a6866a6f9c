import { execSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import WebSocket from "ws";
import { phaseStripe } from "./lib/bench-invoicing.mjs";
import { now } from "./lib/clock.mjs";
async function profiler() {
  const ps = execSync("ps -eo pid,args | grep [w]orkerd").toString();
  const upid = ps.split("\n").find((l) => l.includes("inspector-addr")).trim().split(" ")[0];
  const ss = execSync("ss -ltnp").toString().split("\n").filter((l) => l.includes(`pid=${upid},`));
  const ports = ss.map((l) => l.match(/:(\d+)\s+\S+:\*/)?.[1]).filter(Boolean);
  let t;
  for (const p of ports) { try { const list = await (await fetch(`http://127.0.0.1:${p}/json/list`)).json(); t ??= list.find((x) => /core:user:office-billing/.test(x.title)); } catch {} }
  const ws = new WebSocket(t.webSocketDebuggerUrl);
  await new Promise((r) => ws.on("open", r));
  let id = 0; const pending = new Map();
  ws.on("message", (d) => { const m = JSON.parse(d); if (m.id && pending.has(m.id)) { pending.get(m.id)(m); pending.delete(m.id); } });
  const send = (method, params = {}) => new Promise((r) => { const i = ++id; pending.set(i, r); ws.send(JSON.stringify({ id: i, method, params })); });
  await send("Profiler.enable"); await send("Profiler.setSamplingInterval", { interval: 250 }); await send("Profiler.start");
  return async () => { const stop = await send("Profiler.stop"); writeFileSync("/tmp/prof-inv.cpuprofile", JSON.stringify(stop.result.profile)); ws.close(); execSync("cp .wrangler/tmp/dev-*/index.js /tmp/devbundle-inv.js || true"); };
}
const d = new Date(now()); const lastMonthStart = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - 1, 1)).toISOString().slice(0, 10);
let stopP = null;
const log = (s) => { console.error(s); if (s.startsWith("fixture ready")) profiler().then((stop) => { stopP = stop; setTimeout(() => stop(), 18000); }); };
const r = await phaseStripe({ offices: 1000, patients: 40, stripeRps: 100, gatewayRps: 100, lastMonthStart, log });
console.error(JSON.stringify(r.invoicing).slice(0, 600));
