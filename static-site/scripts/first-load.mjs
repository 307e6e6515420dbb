// Measures a first visit of the web UI in headless Chromium on a throttled network (DevTools'
// "Slow 3G": 2 s round trip, 400 kbit/s each way), with an empty cache: the bytes transferred,
// the time to first contentful paint, and the time until the sign-in page is usable.
//   node scripts/first-load.mjs http://127.0.0.1:8000 [runs]
// Prints one JSON line per run and a summary. A benchmark, not a test.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const base = process.argv[2] ?? "http://127.0.0.1:8000";
const runs = Number(process.argv[3] ?? 3);
const results = [];
for (let i = 0; i < runs; i++) {
  const profile = mkdtempSync(join(tmpdir(), "jhe-first-load-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
  await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 2000, downloadThroughput: 50_000, uploadThroughput: 50_000 });
  let bytes = 0;
  let requests = 0;
  cdp.on("Network.loadingFinished", (e) => {
    bytes += e.encodedDataLength;
    requests += 1;
  });
  const t0 = Date.now();
  await page.goto(`${base}/`, { waitUntil: "commit" });
  await page.getByRole("button", { name: "Log in" }).waitFor({ timeout: 120_000 });
  const usable = Date.now() - t0;
  const fcp = await page.evaluate(() => performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? null);
  await page.waitForLoadState("networkidle");
  const r = { run: i + 1, bytes, requests, first_contentful_paint_ms: fcp && Math.round(fcp), usable_ms: usable };
  console.log(JSON.stringify(r));
  results.push(r);
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
const median = (k) => results.map((r) => r[k]).sort((a, b) => a - b)[Math.floor(results.length / 2)];
console.log(JSON.stringify({ median: { bytes: median("bytes"), requests: median("requests"), first_contentful_paint_ms: median("first_contentful_paint_ms"), usable_ms: median("usable_ms") } }));
