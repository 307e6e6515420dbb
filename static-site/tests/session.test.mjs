// Sessions that end while someone works: the access token is renewed with the refresh token
// before it is needed; when that is not possible, the user signs in again and finds the form they
// were filling in as they left it. And the manager's audit trail, and the lookup-and-add flow.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { BASE, PASSWORD, launch, login, screenshot, settled } from "./lib/browser.mjs";

let browser;
let page;

before(async () => {
  browser = await launch();
  page = browser.page;
});

after(async () => {
  await browser?.close();
});

/** Edits the stored OIDC user (sessionStorage) of the page. */
const editUser = (change) =>
  page.evaluate((change) => {
    const key = Object.keys(sessionStorage).find((k) => k.startsWith("oidc.user:"));
    const user = JSON.parse(sessionStorage.getItem(key));
    if (change === "expired") user.expires_at = Math.floor(Date.now() / 1000) - 10;
    if (change === "expired-without-refresh") {
      user.expires_at = Math.floor(Date.now() / 1000) - 10;
      delete user.refresh_token;
    }
    sessionStorage.setItem(key, JSON.stringify(user));
    return user.access_token;
  }, change);

test("an expired access token is renewed with the refresh token, unseen", async () => {
  await login(page, "manager_mary@example.com");
  await page.goto(`${BASE}/api-keys`);
  await settled(page);
  const before = await editUser("expired");
  await page.getByLabel("Label", { exact: true }).fill("renewed quietly");
  await page.getByRole("button", { name: "Create API key" }).click();
  await page.getByTestId("new-key").waitFor();
  assert.match(page.url(), /\/api-keys$/, "no detour through the login");
  const after = await page.evaluate(() => {
    const key = Object.keys(sessionStorage).find((k) => k.startsWith("oidc.user:"));
    return JSON.parse(sessionStorage.getItem(key)).access_token;
  });
  assert.notEqual(after, before, "a new access token");
});

test("when the session cannot be renewed, the form survives signing in again", async () => {
  await page.goto(`${BASE}/api-keys`);
  await settled(page);
  await editUser("expired-without-refresh");
  await browser.context.clearCookies(); // the login session has ended too
  await page.getByLabel("Label", { exact: true }).fill("typed before the session ended");
  await page.getByRole("button", { name: "Create API key" }).click();
  await page.waitForURL(/\/accounts\/login\//);
  await page.getByLabel("Email").fill("manager_mary@example.com");
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(/\/api-keys$/, { waitUntil: "commit" });
  await settled(page);
  assert.equal(await page.getByLabel("Label", { exact: true }).inputValue(), "typed before the session ended");
  await screenshot(page, "form-kept-after-sign-in");
});

test("a manager searches the audit trail by patient", async () => {
  await page.goto(`${BASE}/audit`);
  await settled(page);
  await page.getByLabel("Patient id").fill("40001");
  await page.getByRole("button", { name: "Search" }).click();
  await page.waitForURL(/patient=40001/);
  await page.getByTestId("audit-events").waitFor();
  assert.ok((await page.getByTestId("audit-events").locator("li[data-event]").count()) > 0);
  await screenshot(page, "audit-trail");
  assert.deepEqual(browser.errors, []);
});

test("adding a patient whose email exists offers to add the existing patient instead", async () => {
  await page.goto(`${BASE}/patients/new`);
  await settled(page);
  // Mary manages Saturn School of Data Science; Peter is a patient of Lifespan Lab.
  await page.getByLabel("Organization").selectOption({ label: "Saturn School of Data Science" });
  await page.getByLabel("Email", { exact: true }).fill("ll_patient_peter@example.com");
  await page.getByLabel("Given name").fill("Peter");
  await page.getByLabel("Family name").fill("Again");
  await page.getByLabel("Birth date").fill("1980-01-01");
  await page.getByRole("button", { name: "Add patient" }).click();
  await page.getByRole("heading", { name: "ll_patient_peter@example.com is already a patient" }).waitFor();
  await page.getByRole("button", { name: "Add the existing patient" }).click();
  await page.waitForURL(/\/patients$/);
  await screenshot(page, "patient-added-existing");
});
