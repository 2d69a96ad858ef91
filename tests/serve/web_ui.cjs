// The web UI in a real browser: Debian's chromium, headless, driven by playwright-core, on an
// offloaded model. Loads the page, sends a chat message, sees the reply stream in (several text
// updates before it ends) and the IO monitor update while a generation runs (counters, experts
// outside the compute tier); saves screenshots as test artifacts.
// Usage: node web_ui.cjs URL ARTIFACT_DIR PROFILE_DIR
"use strict";
const { chromium } = require("playwright-core");
const path = require("path");
const [url, artifacts, profile] = process.argv.slice(2);

let failures = 0;
function check(ok, what, detail) {
  if (!ok) { failures++; console.log("FAIL " + what + (detail === undefined ? "" : ": " + JSON.stringify(detail))); }
}

(async () => {
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync"],
    viewport: { width: 1280, height: 900 },
  });
  try {
    const page = context.pages()[0] || (await context.newPage());
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(url + "/", { waitUntil: "load" });
    await page.waitForFunction(() => document.getElementById("model-name").textContent === "tiny", null, { timeout: 30000 });

    // Count the reply's text updates as they happen. The tiny model streams its reply in a few
    // milliseconds, which a renderer starved by a loaded machine could take in as one or two reads;
    // a throttled network spreads the reply's bytes over seconds, so that each arrives on its own.
    const cdp = await context.newCDPSession(page);
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: 4096, uploadThroughput: -1 });
    await page.evaluate(() => {
      window.__updates = 0;
      new MutationObserver(() => { window.__updates++; })
        .observe(document.getElementById("messages"), { subtree: true, characterData: true, childList: true });
    });
    await page.fill("[data-testid=input]", "Tell me about the sea.");
    await page.fill("#max_tokens", "120");
    await page.click("[data-testid=send]");
    await page.waitForSelector(".msg.assistant[data-done=true]", { timeout: 60000 });
    const reply = await page.textContent(".msg.assistant .text");
    const updates = await page.evaluate(() => window.__updates);
    check(reply.length > 0, "the reply has text", reply);
    check(updates >= 5, "the reply streamed in (text updates before the end)", updates);
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    const meta = await page.textContent(".msg.assistant .meta");
    check(/tokens/.test(meta), "the reply's statistics", meta);
    await page.screenshot({ path: path.join(artifacts, "web_ui_chat.png") });

    // The IO monitor: its counters move while a generation runs.
    await page.click("[data-testid=monitor-tab]");
    await page.waitForFunction(() => Number(document.querySelector("[data-testid=monitor-tokens]").textContent) > 0, null, { timeout: 10000 });
    const before = Number(await page.textContent("[data-testid=monitor-tokens]"));
    const cells = await page.locator("#heatmap .cell").count();
    check(cells === 4 * 4, "the heatmap has a cell per layer and expert", cells);
    await page.evaluate(() => {
      window.__generation = fetch("/v1/chat/completions", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ messages: [{ role: "user", content: "more" }], max_tokens: 200 }) }).then((r) => r.json());
    });
    await page.waitForFunction((b) => Number(document.querySelector("[data-testid=monitor-tokens]").textContent) > b, before,
                               { timeout: 30000 });
    await page.evaluate(() => window.__generation);
    await page.waitForTimeout(600);  // one more poll after the end
    const note = await page.textContent("#monitor-note");
    const tiers = await page.evaluate(() => [...document.querySelectorAll("#heatmap .cell")].map((c) => c.className.slice(-1)).join(""));
    check(/by tier/.test(note), "the monitor knows the model is offloaded", note);
    check(/[wc]/.test(tiers) && tiers.length === 16, "the heatmap shows experts outside the compute tier", tiers);
    const hit = await page.textContent("#m-hit");
    check(/%$/.test(hit) && hit !== "100.0%", "a hit rate below 100% with a quarter of the experts in the compute tier", hit);
    await page.screenshot({ path: path.join(artifacts, "web_ui_monitor.png") });

    // The model tab.
    await page.click("nav button[data-tab=model]");
    await page.waitForFunction(() => document.querySelectorAll("#config tr").length > 10, null, { timeout: 10000 });
    check(errors.length === 0, "no page errors", errors);
  } finally {
    await context.close();
  }
  console.log(`web UI: ${failures} failures; screenshots in ${artifacts}`);
  process.exit(failures ? 1 : 0);
})().catch((e) => { console.log("FAIL " + (e.stack || e)); process.exit(1); });
