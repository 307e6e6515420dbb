// A patient in a real browser, phone-sized: logs in with the demo login, finds the studies that
// ask for their data, shares a scope (consent is the patient's own act), sees their data, sees in
// their access log that a practitioner read it, and stops sharing, after which the study sees
// nothing of it.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { BASE, PASSWORD, launch, login, screenshot, settled } from "./lib/browser.mjs";
import { call, practitionerToken } from "./lib/jhe-api.mjs";

const PETER = "ll_patient_peter@example.com";
const BP = "omh:blood-pressure:4.0";
const STUDY = 30002; // "Lifespan Study on BP": Peter has not decided yet
let browser;
let page;
let mary;

before(async () => {
  browser = await launch();
  page = browser.page;
  await page.setViewportSize({ width: 375, height: 740 });
  mary = await practitionerToken(BASE, "manager_mary@example.com", PASSWORD);
});

after(async () => {
  await browser?.close();
});

const scopeRow = () => page.locator(`[data-study-id="${STUDY}"] [data-scope="${BP}"]`);
const marySees = async () => {
  const b = await call(BASE, mary, "GET", `/FHIR/R5/Observation?patient=40001&patient._has:Group:member:_id=${STUDY}&code=https://w3id.org/openmhealth|${BP}`);
  return b.total;
};

test("the patient logs in and sees the studies that ask for their data", async () => {
  await login(page, PETER, BASE, /\/me$/);
  await settled(page);
  await page.getByRole("heading", { level: 1, name: "My studies" }).waitFor();
  assert.equal(await scopeRow().getAttribute("data-state"), "pending");
  await screenshot(page, "patient-studies-375");
  assert.deepEqual(browser.errors, []);
});

test("the patient shares a scope; the study reads it; the access log shows the practitioner's read", async () => {
  assert.equal(await marySees(), 0, "nothing before the patient decides");
  await scopeRow().getByRole("button", { name: /^Share/ }).click();
  await page.locator(`[data-study-id="${STUDY}"] [data-scope="${BP}"][data-state="shared"]`).waitFor();
  assert.ok((await marySees()) > 0, "the study reads the shared scope");
  await page.getByRole("button", { name: "Toggle navigation" }).click();
  await page.getByRole("link", { name: "Who saw my data" }).click();
  await page.getByRole("heading", { level: 1, name: "Who saw my data" }).waitFor();
  await settled(page);
  await page.locator("#nav-links").waitFor({ state: "hidden", timeout: 2000 }); // the phone menu closes after a choice
  const row = page.getByTestId("my-access-log").locator("li").filter({ hasText: "manager_mary@example.com" }).filter({ hasText: "GET /FHIR/R5/Observation" });
  assert.ok((await row.count()) > 0, "Mary's read is in Peter's access log");
  await screenshot(page, "patient-access-log-375");
});

test("the patient sees their own data as a table and a chart", async () => {
  await page.goto(`${BASE}/me/data?scope=${BP}`);
  await page.getByRole("heading", { level: 1, name: "My data" }).waitFor();
  await settled(page);
  assert.ok((await page.getByTestId("my-observations").locator("tbody tr[data-observation]").count()) > 0);
  await page.locator("[data-chart] canvas").first().waitFor();
  await screenshot(page, "patient-data-375");
});

test("the patient stops sharing, and the study sees nothing of it at once", async () => {
  await page.goto(`${BASE}/me`);
  await settled(page);
  await scopeRow().getByRole("button", { name: /^Stop sharing/ }).click();
  await page.locator("#confirm-dialog").getByRole("button", { name: "Stop sharing" }).click();
  await page.locator(`[data-study-id="${STUDY}"] [data-scope="${BP}"][data-state="not-shared"]`).waitFor();
  assert.equal(await marySees(), 0);
  assert.deepEqual(browser.errors, []);
});
