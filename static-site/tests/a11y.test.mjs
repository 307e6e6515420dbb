// Every page of the web UI, as a manager and as a patient, on a desktop and on a 375 px phone:
// axe-core (WCAG 2 A and AA rules) finds no violation, nothing scrolls sideways, and no page
// logs an error. A screenshot of each page goes to the test output.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { after, before, test } from "node:test";
import { BASE, launch, login, logout, screenshot, settled } from "./lib/browser.mjs";

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const VIEWPORTS = [
  ["desktop", { width: 1366, height: 900 }],
  ["phone", { width: 375, height: 740 }],
];
const MANAGER_PAGES = [
  "/organizations",
  "/organizations/20003",
  "/organizations/20004",
  "/studies",
  "/studies/30001",
  "/patients",
  "/patients/40001",
  "/patients/new",
  "/observations?patient=40001&scope=omh:blood-pressure:4.0",
  "/api-keys",
  "/audit?patient=40001",
  "/profile",
];
const PATIENT_PAGES = ["/me", "/me/data", "/me/access"];

let browser;
let page;

before(async () => {
  browser = await launch();
  page = browser.page;
});

after(async () => {
  await browser?.close();
});

/** axe-core's violations of the current page (evaluated through the debugging protocol, which the
 * page's content security policy does not apply to). */
async function violations() {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() =>
    window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } }),
  );
  return result.violations.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join("; ")}`);
}

async function check(paths, who) {
  const problems = [];
  for (const [name, size] of VIEWPORTS) {
    await page.setViewportSize(size);
    for (const path of paths) {
      await page.goto(`${BASE}${path}`);
      await settled(page);
      await page.waitForLoadState("networkidle");
      for (const v of await violations()) problems.push(`${who} ${name} ${path}: ${v}`);
      const sideways = await page.evaluate(() => {
        if (document.documentElement.scrollWidth <= window.innerWidth + 1) return null;
        const wide = [...document.querySelectorAll("body *")].find((e) => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest(".table-responsive"));
        return wide ? `${wide.tagName.toLowerCase()}.${[...wide.classList].join(".")}` : "?";
      });
      if (sideways) problems.push(`${who} ${name} ${path}: the page scrolls sideways (${sideways})`);
      await screenshot(page, `a11y-${who}-${name}-${path.replace(/[/?=&:]+/g, "_").replace(/^_|_$/g, "")}`);
    }
  }
  return problems;
}

test("every manager page passes axe and fits a phone", async () => {
  await login(page, "manager_mary@example.com");
  const problems = await check(MANAGER_PAGES, "manager");
  await page.setViewportSize({ width: 1366, height: 900 });
  await logout(page);
  assert.deepEqual(problems, []);
  assert.deepEqual(browser.errors, []);
});

test("every patient page passes axe and fits a phone", async () => {
  await login(page, "ll_patient_pamela@example.com", BASE, /\/me$/);
  const problems = await check(PATIENT_PAGES, "patient");
  assert.deepEqual(problems, []);
  assert.deepEqual(browser.errors, []);
});
