// A small HTTP client for chronos-serve (Node.js 18+, no packages): the load test of the serve
// tests and the client side of tools/bench/serve_bench.sh.
//   --mode load: REQUESTS requests from CLIENTS concurrent clients, a mix of whole and streamed
//     chats, streams cancelled after their first token, malformed JSON, bad fields, unknown routes
//     and bodies over the limit. Every request must be answered with its expected status (a good
//     one may be refused with 429), the server must stay healthy, and its RSS (--pid) must come
//     back to the baseline taken after a warm-up round. Exit 1 on any failure.
//   --mode bench: CLIENTS clients each send streamed /v1/completions requests (REQUESTS in all,
//     after WARMUP unmeasured ones); prints one JSON line: time to first token p50/p95, per-stream
//     and aggregate tokens/s.
"use strict";
const fs = require("fs");

function flags() {
  const out = { mode: "load", url: "", pid: 0, requests: 200, clients: 16, "max-tokens": 64, prompt: "The history of the river", slack: 0.1, warmup: 0 };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, "");
    if (!(name in out)) throw new Error(`unknown flag --${name}`);
    out[name] = typeof out[name] === "number" ? Number(argv[i + 1]) : argv[i + 1];
  }
  if (!out.url) throw new Error("--url is required");
  return out;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const rssMiB = (pid) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
};
const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN;
};
const median = (xs) => quantile(xs, 0.5);

// Reads an SSE response to its end (or `stopAfter` content chunks, then aborts): chunks, times.
async function readStream(res, controller, stopAfter) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "", contents = 0, first = 0, last = 0, usage = null, done = false, error = null;
  try {
    for (;;) {
      const { value, done: end } = await reader.read();
      if (end) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const data = buffer.slice(0, cut).replace(/^data: /, "");
        buffer = buffer.slice(cut + 2);
        if (data === "[DONE]") { done = true; continue; }
        const chunk = JSON.parse(data);
        if (chunk.error) error = chunk.error;
        if (chunk.usage) usage = chunk.usage;
        const c = chunk.choices && chunk.choices[0];
        const text = c ? (c.delta ? c.delta.content : c.text) : "";
        if (text) {
          last = performance.now();
          if (!first) first = last;
          if (++contents === stopAfter) { controller.abort(); return { contents, first, last, usage, done, aborted: true }; }
        }
      }
    }
  } catch (e) {
    if (e.name === "AbortError") return { contents, first, last, usage, done, aborted: true };
    throw e;
  }
  return { contents, first, last, usage, done, error, aborted: false };
}

// --mode load ------------------------------------------------------------------------------------
const chat = (extra) => JSON.stringify({ messages: [{ role: "user", content: "Tell me something." }], ...extra });
const KINDS = [
  { name: "whole", share: 4, path: "/v1/chat/completions", body: () => chat({ max_tokens: 16 }), want: [200, 429] },
  { name: "stream", share: 2, path: "/v1/chat/completions", body: () => chat({ max_tokens: 24, stream: true }), want: [200, 429], stream: true },
  { name: "cancel", share: 1, path: "/v1/chat/completions", body: () => chat({ max_tokens: 400, stream: true }), want: [200, 429], stream: true, cancel: true },
  { name: "bad-json", share: 1, path: "/v1/chat/completions", body: () => '{"messages": [{"role": "user", "content": "x"', want: [400] },
  { name: "bad-field", share: 1, path: "/v1/completions", body: () => JSON.stringify({ prompt: "x", temperature: "warm" }), want: [400] },
  { name: "too-large", share: 1, path: "/v1/completions", body: () => JSON.stringify({ prompt: "x".repeat(70000) }), want: [413] },
];
const SCHEDULE = KINDS.flatMap((k) => Array(k.share).fill(k));

async function one(url, kind) {
  const controller = new AbortController();
  const res = await fetch(url + kind.path, { method: "POST", headers: { "Content-Type": "application/json" }, body: kind.body(), signal: controller.signal });
  if (!kind.want.includes(res.status)) return { ok: false, why: `${kind.name}: HTTP ${res.status} ${await res.text()}` };
  if (res.status !== 200) {
    const body = await res.json();
    if (!body.error || typeof body.error.message !== "string") return { ok: false, why: `${kind.name}: ${res.status} without an error body` };
    return { ok: true, status: res.status };
  }
  if (!kind.stream) {
    const body = await res.json();
    return body.choices && body.usage ? { ok: true, status: 200 } : { ok: false, why: `${kind.name}: no choices` };
  }
  const r = await readStream(res, controller, kind.cancel ? 1 : 0);
  if (kind.cancel) return { ok: true, status: 200, cancelled: true };
  return r.done ? { ok: true, status: 200 } : { ok: false, why: `${kind.name}: the stream ended without [DONE]` };
}

async function pool(count, clients, task) {
  let next = 0;
  await Promise.all(Array.from({ length: clients }, async () => {
    while (next < count) await task(next++);
  }));
}

async function idle(url) {
  for (let i = 0; i < 600; i++) {
    const m = await fetch(url + "/monitor").then((r) => r.json());
    if (m.requests.processing === 0 && m.requests.queued === 0) return true;
    await sleep(100);
  }
  return false;
}

async function load(f) {
  const failures = [];
  // Warm-up: every connection thread and allocator arena the load will use exists before the baseline.
  await pool(f.clients, f.clients, async () => { await one(f.url, KINDS[0]); });
  await idle(f.url);
  await sleep(500);
  const baseline = f.pid ? rssMiB(f.pid) : NaN;
  const statuses = {};
  const started = performance.now();
  await pool(f.requests, f.clients, async (i) => {
    const kind = SCHEDULE[i % SCHEDULE.length];
    try {
      const r = await one(f.url, kind);
      if (!r.ok) failures.push(r.why);
      const key = `${kind.name} ${r.status}`;
      statuses[key] = (statuses[key] || 0) + 1;
    } catch (e) {
      // undici's "fetch failed" keeps the socket error (ECONNRESET, other side closed) in cause.
      const cause = e.cause ? ` (${e.cause.code || ""} ${e.cause.message || e.cause})` : "";
      failures.push(`${kind.name}: ${e.message}${cause} [request ${i} at ${((performance.now() - started) / 1000).toFixed(3)} s]`);
    }
  });
  const seconds = (performance.now() - started) / 1000;
  if (!(await idle(f.url))) failures.push("the server did not become idle after the load");
  const health = await fetch(f.url + "/health").then((r) => r.status).catch((e) => e.message);
  if (health !== 200) failures.push(`/health after the load: ${health}`);
  await sleep(1000);
  const after = f.pid ? rssMiB(f.pid) : NaN;
  const limit = baseline + Math.max(16, baseline * f.slack);
  if (f.pid && !(after <= limit)) failures.push(`RSS ${after.toFixed(1)} MiB after the load, baseline ${baseline.toFixed(1)} MiB (limit ${limit.toFixed(1)})`);
  console.log(JSON.stringify({ requests: f.requests, clients: f.clients, seconds: Number(seconds.toFixed(2)), statuses,
                               rss_baseline_mib: Number(baseline.toFixed(1)), rss_after_mib: Number(after.toFixed(1)) }));
  for (const why of failures.slice(0, 20)) console.log("FAIL " + why);
  if (failures.length > 20) console.log(`... and ${failures.length - 20} more`);
  return failures.length ? 1 : 0;
}

// --mode bench -----------------------------------------------------------------------------------
async function bench(f) {
  const ttft = [], perStream = [];
  let tokens = 0;
  const body = JSON.stringify({ prompt: f.prompt, max_tokens: f["max-tokens"], temperature: 0, stream: true,
                                stream_options: { include_usage: true } });
  for (let i = 0; i < f.warmup; i++) {  // unmeasured: the client's JIT and the server's threads warm up
    const controller = new AbortController();
    await readStream(await fetch(f.url + "/v1/completions", { method: "POST", headers: { "Content-Type": "application/json" }, body,
                                                             signal: controller.signal }), controller, 0);
  }
  const started = performance.now();
  await pool(f.requests, f.clients, async () => {
    const controller = new AbortController();
    const sent = performance.now();
    const res = await fetch(f.url + "/v1/completions", { method: "POST", headers: { "Content-Type": "application/json" }, body,
                                                         signal: controller.signal });
    if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
    const r = await readStream(res, controller, 0);
    if (!r.usage) throw new Error("no usage chunk");
    ttft.push(r.first - sent);
    tokens += r.usage.completion_tokens;
    if (r.usage.completion_tokens > 1 && r.last > r.first) perStream.push((r.usage.completion_tokens - 1) / ((r.last - r.first) / 1000));
  });
  const seconds = (performance.now() - started) / 1000;
  console.log(JSON.stringify({ clients: f.clients, requests: f.requests, max_tokens: f["max-tokens"],
                               ttft_ms_p50: Number(median(ttft).toFixed(2)), ttft_ms_p95: Number(quantile(ttft, 0.95).toFixed(2)),
                               stream_tokens_per_s_median: Number(median(perStream).toFixed(2)),
                               aggregate_tokens_per_s: Number((tokens / seconds).toFixed(2)), tokens, seconds: Number(seconds.toFixed(2)) }));
  return 0;
}

(async () => {
  const f = flags();
  process.exit(f.mode === "load" ? await load(f) : f.mode === "bench" ? await bench(f) : 2);
})().catch((e) => { console.log("FAIL " + (e.stack || e)); process.exit(1); });
