// A month of continuous glucose readings (30 days every 5 minutes: 8,640 points) must load with
// progress and render in the chart without stalling the page: uploaded through the API as the
// seeded Cardiology patient, then opened in the browser by their manager.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { BASE, PASSWORD, launch, login, screenshot } from "./lib/browser.mjs";
import { call, glucoseObservation, patientToken, practitionerToken, uploadBatch } from "./lib/jhe-api.mjs";

const MANAGER = "manager_mark@example.com";
const POINTS = 30 * 24 * 12;
const BATCH = 1000;

let browser;
let patientId;

before(async () => {
  browser = await launch();
  // Main-thread long tasks and the progress messages, observed from the first script on.
  await browser.context.addInitScript(() => {
    window.__longTasks = [];
    window.__progress = [];
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) window.__longTasks.push(entry.duration);
    }).observe({ type: "longtask", buffered: true });
    new MutationObserver(() => {
      const text = document.querySelector("[data-progress-text]")?.textContent;
      if (text && window.__progress.at(-1) !== text) window.__progress.push(text);
    }).observe(document, { subtree: true, childList: true, characterData: true });
  });
});

after(async () => {
  await browser?.close();
});

test("a 30-day CGM series is uploaded through the API as the patient", async () => {
  const mark = await practitionerToken(BASE, MANAGER, PASSWORD);
  const patients = await call(BASE, mark, "GET", "/api/v1/patients");
  patientId = patients.results.find((p) => p.telecomEmail === "ccl_cardio_patient_pat@example.com").id;
  const clients = await call(BASE, mark, "GET", `/api/v1/patients/${patientId}/consolidated_clients`);
  const sources = await call(BASE, mark, "GET", "/api/v1/data_sources");
  const dexcom = sources.results.find((d) => d.name === "Dexcom").id;
  const token = await patientToken(BASE, mark, patientId, clients.find((c) => c.name === "CommonHealth").id);
  const start = Date.parse("2025-01-01T00:00:00Z");
  let created = 0;
  for (let from = 0; from < POINTS; from += BATCH) {
    const batch = [];
    for (let i = from; i < Math.min(from + BATCH, POINTS); i++) {
      const daily = 30 * Math.sin((2 * Math.PI * i) / 288);
      batch.push(
        glucoseObservation(
          patientId,
          dexcom,
          new Date(start + i * 300_000),
          Math.round(120 + daily + 10 * Math.sin(i / 7)),
        ),
      );
    }
    created += await uploadBatch(BASE, token, batch);
  }
  assert.equal(created, POINTS);
});

test("the chart renders the whole month with progress and without stalling", async () => {
  const { page } = browser;
  await login(page, MANAGER);
  const started = Date.now();
  await page.goto(
    `${BASE}/observations?patient=${patientId}&scope=omh:blood-glucose:4.0&from=2025-01-01&to=2025-01-30`,
  );
  await page.getByRole("heading", { level: 1, name: "Observations" }).waitFor();
  await page.getByTestId("chart-summary").waitFor({ timeout: 60_000 });
  const elapsed = Date.now() - started;
  assert.match(await page.getByTestId("chart-summary").textContent(), /8,640 values/);
  assert.ok((await page.locator("#obs-chart canvas").count()) > 0);
  const progress = await page.evaluate(() => window.__progress);
  assert.ok(progress.includes("Loaded 1,000 of 8,640 observations…"), `progress shown: ${progress.join(" | ")}`);
  const longest = Math.max(0, ...(await page.evaluate(() => window.__longTasks)));
  console.log(`CGM month: chart shown after ${elapsed} ms; longest main-thread task ${Math.round(longest)} ms`);
  assert.ok(longest < 500, `the page stalled for ${Math.round(longest)} ms`);
  await page.mouse.move(700, 400);
  await screenshot(page, "observations-cgm-month");
  assert.deepEqual(browser.errors, []);
});
