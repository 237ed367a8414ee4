#!/usr/bin/env node
// Peer benchmark: the npm `redlock` client (5.0.0-beta.2) over ioredis, driven with the same
// flags as redlock-bench and floor.c so that ../shared/perf/compare.py can run it side by side.
// Prints exactly one JSON line on stdout; everything else goes to stderr. See README.md.
"use strict";

const Redis = require("ioredis");
const { default: Redlock, ExecutionError } = require("redlock");

// redlock's "exports" map hides package.json; read it next to the resolved entry point.
const IMPL = "node-redlock-" +
  require(require("path").resolve(require.resolve("redlock"), "../../../package.json")).version.replace(/^v/, "");

function die(msg) {
  process.stderr.write(`bench.js: ${msg}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  const o = {
    scenario: "a", ports: [], seconds: 1, warmupS: 0.2, inflight: 64, ttlMs: 10000,
    cmdTimeoutMs: 50, workers: 8, rep: 0,
  };
  const num = (k, v) => {
    const x = Number(v);
    if (v === undefined || !Number.isFinite(x)) die(`bad value for --${k}: ${v}`);
    return x;
  };
  for (let i = 0; i < argv.length; i++) {
    let k = argv[i];
    let v;
    if (!k.startsWith("--")) die(`unexpected argument: ${k}`);
    k = k.slice(2);
    const eq = k.indexOf("=");
    if (eq >= 0) { v = k.slice(eq + 1); k = k.slice(0, eq); }
    const take = () => (v !== undefined ? v : argv[++i]);
    switch (k) {
      case "scenario": o.scenario = take(); break;
      case "ports": o.ports = String(take()).split(",").filter(Boolean).map((p) => num("ports", p)); break;
      case "seconds": o.seconds = num(k, take()); break;
      case "warmup-s": o.warmupS = num(k, take()); break;
      case "inflight": o.inflight = num(k, take()); break;
      case "ttl-ms": o.ttlMs = num(k, take()); break;
      case "cmd-timeout-ms": o.cmdTimeoutMs = num(k, take()); break;
      case "workers": o.workers = num(k, take()); break;
      case "rep": o.rep = num(k, take()); break;
      case "help": process.stderr.write(
        "usage: node bench.js --scenario a|b|c|d --ports P1,P2,... [--seconds 1] [--warmup-s 0.2]\n" +
        "       [--inflight 64] [--ttl-ms 10000] [--cmd-timeout-ms 50] [--workers 8] [--rep N]\n");
        process.exit(0);
      default: {
        // Flags meant for other benches (compare.py --bench-args): warn and skip.
        if (v === undefined && i + 1 < argv.length && !argv[i + 1].startsWith("--")) i++;
        process.stderr.write(`bench.js: ignoring unknown flag --${k}\n`);
      }
    }
  }
  if (!["a", "b", "c", "d"].includes(o.scenario)) die(`unknown scenario: ${o.scenario}`);
  if (o.ports.length === 0) die("--ports is required");
  if (!(o.seconds > 0) || o.warmupS < 0 || !(o.inflight >= 1) || !(o.workers >= 1) ||
      !Number.isInteger(o.ttlMs) || o.ttlMs <= 0 || !(o.cmdTimeoutMs > 0)) die("bad numeric flag");
  return o;
}

const nowNs = () => process.hrtime.bigint();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function pct(sorted, q) {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}
const us = (ns) => Math.round(Number(ns) / 100) / 10; // ns -> us, 0.1 us resolution

// Wait (bounded) until the clients are ready. All of them, or a quorum once a grace period has
// passed: in scenario d the last node is SIGSTOPped and never answers the ready check.
async function waitReady(clients, quorum) {
  const t0 = Date.now();
  for (;;) {
    const ready = clients.filter((c) => c.status === "ready").length;
    const el = Date.now() - t0;
    if (ready === clients.length) return ready;
    if (ready >= quorum && el >= 500) return ready;
    if (el >= 5000) return ready;
    await sleep(5);
  }
}

async function shutdown(clients) {
  const closing = clients.map((c) => {
    if (c.status !== "ready") { c.disconnect(); return Promise.resolve(); }
    return c.quit().catch(() => c.disconnect());
  });
  await Promise.race([Promise.all(closing), sleep(1000)]);
  for (const c of clients) if (c.status !== "end") c.disconnect();
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const n = o.ports.length;
  const quorum = Math.floor(n / 2) + 1;
  let redisErrors = 0;
  const clients = o.ports.map((port) => {
    const c = new Redis({
      host: "127.0.0.1",
      port,
      commandTimeout: o.cmdTimeoutMs, // every command (incl. the ready check) is bounded
      maxRetriesPerRequest: 0,        // no re-sending after a reconnect
      enableOfflineQueue: false,      // not-ready node: fail at once instead of queueing
      connectTimeout: 1000,
    });
    c.on("error", (e) => {
      if (redisErrors++ < 3) process.stderr.write(`bench.js: redis :${port}: ${e.message}\n`);
    });
    return c;
  });
  const redlock = new Redlock(clients); // library defaults: driftFactor, retryCount/Delay/Jitter
  // Redlock emits every per-node failure (including "resource locked" votes); without a listener
  // EventEmitter would throw. Count them only.
  let voteErrors = 0;
  const voteKinds = new Map();
  redlock.on("error", (e) => {
    voteErrors++;
    const k = e && e.name === "ResourceLockedError" ? "resource locked" : String(e && e.message).slice(0, 60);
    voteKinds.set(k, (voteKinds.get(k) || 0) + 1);
  });

  const ready = await waitReady(clients, quorum);
  if (ready < quorum) {
    process.stderr.write(`bench.js: only ${ready}/${n} nodes ready, need ${quorum}\n`);
    await shutdown(clients);
    process.exit(1);
  }
  if (ready < n) process.stderr.write(`bench.js: ${ready}/${n} nodes ready, continuing with quorum ${quorum}\n`);

  const tStart = nowNs();
  const tMeasure = tStart + BigInt(Math.round(o.warmupS * 1e9));
  const tEnd = tMeasure + BigInt(Math.round(o.seconds * 1e9));
  const inWindow = (t) => t >= tMeasure && t < tEnd;
  let stop = false;

  const cycles = []; // ns per counted op (cycle, or wait + cycle in c)
  const acqs = [];   // ns per counted acquire
  let acquireErrors = 0, releaseErrors = 0;
  const nWorkers = o.scenario === "b" ? o.inflight : o.scenario === "c" ? o.workers : 1;
  const workerOps = new Array(nWorkers).fill(0);

  const loop = async (w, resource) => {
    while (!stop) {
      const t0 = nowNs();
      let lock;
      try {
        lock = await redlock.acquire([resource], o.ttlMs);
      } catch (e) {
        if (inWindow(nowNs())) acquireErrors++;
        if (!(e instanceof ExecutionError)) process.stderr.write(`bench.js: acquire: ${e.message}\n`);
        if (o.scenario !== "c") await sleep(1); // a/b/d: failures are not expected; don't spin
        continue;
      }
      const t1 = nowNs();
      try {
        await redlock.release(lock);
      } catch (e) {
        if (inWindow(nowNs())) releaseErrors++;
        if (!(e instanceof ExecutionError)) process.stderr.write(`bench.js: release: ${e.message}\n`);
        continue;
      }
      const t2 = nowNs();
      if (inWindow(t2)) {
        cycles.push(t2 - t0);
        acqs.push(t1 - t0);
        workerOps[w]++;
      }
      if (t2 >= tEnd) break;
    }
  };

  const loops = [];
  for (let w = 0; w < nWorkers; w++) {
    const resource = o.scenario === "b" ? `nodebench:b:${w}` : `nodebench:${o.scenario}`;
    loops.push(loop(w, resource));
  }
  const remainMs = Number(tEnd - nowNs()) / 1e6;
  await sleep(Math.max(0, remainMs));
  stop = true;
  // Let in-flight cycles finish (so no lock is left behind), bounded by the default retry window.
  const settled = await Promise.race([Promise.all(loops).then(() => true), sleep(5000).then(() => false)]);
  if (!settled) process.stderr.write("bench.js: some loops still busy after 5 s; abandoning them\n");

  const windowS = o.seconds;
  cycles.sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  acqs.sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  const out = {
    impl: IMPL,
    scenario: o.scenario,
    nodes: n,
    ops: cycles.length,
    ops_per_s: Math.round((cycles.length / windowS) * 10) / 10,
    p50_us: us(pct(cycles, 0.5)),
    p99_us: us(pct(cycles, 0.99)),
    acq_p50_us: us(pct(acqs, 0.5)),
    errors: acquireErrors + releaseErrors,
    acquire_errors: acquireErrors,
    release_errors: releaseErrors,
    seconds: windowS,
    rep: o.rep,
  };
  if (o.scenario === "b") out.inflight = o.inflight;
  if (o.scenario === "c") { out.workers = o.workers; out.worker_ops = workerOps; }
  const kinds = [...voteKinds].map(([k, c]) => `${c}x ${k}`).join("; ");
  process.stderr.write(`bench.js: ${voteErrors} per-node failed votes${kinds ? ` (${kinds})` : ""}, ` +
    `${redisErrors} client errors\n`);
  process.stdout.write(JSON.stringify(out) + "\n");
  await shutdown(clients);
  process.exit(0);
}

main().catch((e) => {
  process.stderr.write(`bench.js: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
