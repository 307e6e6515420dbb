// The practitioner's journey in a real browser (headless Chromium), as the issue describes it:
// log in as the seeded manager, create a sub-organization, a study with a scope, a data source
// and a client app, add and enroll a patient, generate an invitation link; the patient uploads
// observations through the API; they show in the table and the chart; revoking the consent
// through the API hides them; API keys; the superuser's catalog pages; a viewer finds no edit
// controls. One screenshot per main page.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { BASE, PASSWORD, editControls, launch, login, logout, screenshot, settled } from "./lib/browser.mjs";
import { call, glucoseObservation, patientToken, practitionerToken, uploadBatch } from "./lib/jhe-api.mjs";

const MANAGER = "manager_mary@example.com";
const VIEWER = "viewer_victor@example.com";
const ADMIN = "admin@example.com";
const GLUCOSE = "omh:blood-glucose:4.0";
const OMH = "https://w3id.org/openmhealth";
const UPLOADS = 300;

const run = Date.now().toString(36);
const names = {
  org: `E2E Lab ${run}`,
  study: `E2E Glucose Study ${run}`,
  given: "Erin",
  family: `Tester${run}`,
  email: `erin.${run}@example.com`,
};
const ids = {};
let browser;
let page;
let managerToken;

const consentBody = (consented) => ({
  studyScopeConsents: [{ studyId: ids.study, scopeConsents: [{ codingSystem: OMH, codingCode: GLUCOSE, consented }] }],
});

before(async () => {
  browser = await launch();
  page = browser.page;
  managerToken = await practitionerToken(BASE, MANAGER, PASSWORD);
  const clients = await call(BASE, managerToken, "GET", "/api/v1/clients");
  ids.commonHealth = clients.results.find((c) => c.name === "CommonHealth").id;
  const sources = await call(BASE, managerToken, "GET", "/api/v1/data_sources");
  ids.dexcom = sources.results.find((d) => d.name === "Dexcom").id;
  const mine = await call(BASE, managerToken, "GET", "/api/v1/users/organizations");
  ids.lifespan = mine.find((o) => o.name === "Lifespan Lab").id;
  const studies = await call(BASE, managerToken, "GET", `/api/v1/studies?organizationId=${ids.lifespan}`);
  ids.seededStudy = studies.results.find((st) => st.name === "Lifespan Study on BP & HR").id;
  const patients = await call(BASE, managerToken, "GET", `/api/v1/patients?organizationId=${ids.lifespan}`);
  ids.peter = patients.results.find((p) => p.telecomEmail === "ll_patient_peter@example.com").id;
});

after(async () => {
  await browser?.close();
});

test("the manager logs in through the login form and sees the organization tree", async () => {
  await login(page, MANAGER);
  await settled(page);
  await page.getByRole("link", { name: "Lifespan Lab" }).first().click();
  await page.getByRole("heading", { level: 1, name: "Lifespan Lab" }).waitFor();
  await settled(page);
  assert.match(await page.getByTestId("my-role").textContent(), /Manager/);
  await screenshot(page, "organizations");
});

test("forms validate before sending and API errors are shown in words", async () => {
  const form = page.getByRole("form", { name: "Create a sub-organization" });
  await form.getByRole("button", { name: "Create sub-organization" }).click();
  assert.equal(await form.getByText("Enter a name.").isVisible(), true);
  assert.equal(await form.getByText("Choose the type of organization.").isVisible(), true);
  assert.equal(await page.evaluate(() => document.activeElement.id), "sub-name");
  await page.getByLabel("Practitioner's email").fill("nobody-here@example.com");
  await page.getByRole("button", { name: "Add member" }).click();
  await page.getByRole("alert").filter({ hasText: "No practitioner with this email." }).waitFor();
});

test("the manager creates a sub-organization under Lifespan Lab", async () => {
  await page.getByLabel("Sub-organization name").fill(names.org);
  await page.locator("#sub-type").selectOption("laboratory");
  await page.getByRole("button", { name: "Create sub-organization" }).click();
  await page.getByRole("heading", { level: 1, name: names.org }).waitFor();
  await settled(page);
  ids.org = Number(new URL(page.url()).pathname.split("/").pop());
  assert.ok(ids.org > 0);
  assert.match(await page.getByTestId("my-role").textContent(), /Manager/);
  const parent = await call(BASE, managerToken, "GET", `/api/v1/organizations/${ids.org}`);
  assert.equal(parent.partOf, ids.lifespan);
});

test("the manager creates a study with a scope, a data source and a client app", async () => {
  await page.getByRole("link", { name: "New study" }).click();
  await page.getByRole("heading", { level: 1, name: "New study" }).waitFor();
  await settled(page);
  assert.equal(await page.getByLabel("Organization", { exact: true }).inputValue(), String(ids.org));
  await page.getByLabel("Name", { exact: true }).fill(names.study);
  await page.getByLabel("Description", { exact: true }).fill("Continuous glucose monitoring, end-to-end test");
  await page.getByLabel(/^Blood glucose/).check();
  await page.getByLabel(/^Dexcom/).check();
  await page.getByLabel("CommonHealth").check();
  await page.getByRole("button", { name: "Create study" }).click();
  await page.getByRole("heading", { level: 1, name: names.study }).waitFor();
  await settled(page);
  ids.study = Number(new URL(page.url()).pathname.split("/").pop());
  assert.match(await page.getByTestId("study-scopes").textContent(), /Blood glucose/);
  assert.match(await page.getByTestId("study-data-sources").textContent(), /Dexcom/);
  assert.match(await page.getByTestId("study-clients").textContent(), /CommonHealth/);
});

test("the manager adds a patient and enrolls them in the study", async () => {
  await page.getByRole("link", { name: "Patients", exact: true }).click();
  await page.getByRole("heading", { level: 1, name: "Patients" }).waitFor();
  await settled(page);
  await screenshot(page, "patients-list");
  await page.getByRole("link", { name: "Add patient" }).click();
  await page.getByRole("heading", { level: 1, name: "Add patient" }).waitFor();
  await settled(page);
  await page.getByLabel("Organization", { exact: true }).selectOption(String(ids.org));
  await page.getByLabel("Email", { exact: true }).fill("not-an-email");
  await page.getByLabel("Given name").fill(names.given);
  await page.getByLabel("Family name").fill(names.family);
  await page.getByLabel("Birth date").fill("1985-04-12");
  await page.getByRole("button", { name: "Add patient" }).click();
  assert.equal(await page.getByText("Enter a valid email address.").isVisible(), true);
  await page.getByLabel("Email", { exact: true }).fill(names.email);
  await page.getByLabel("System", { exact: true }).fill("urn:oid:2.16.840.1.113883.4.1");
  await page.getByLabel("Value", { exact: true }).fill(`E2E-${run}`);
  await page.getByRole("button", { name: "Add patient" }).click();
  await page.getByRole("heading", { level: 1, name: `${names.given} ${names.family}` }).waitFor();
  await settled(page);
  ids.patient = Number(new URL(page.url()).pathname.split("/").pop());

  await page.getByLabel("Study to enroll in").selectOption(String(ids.study));
  await page.getByRole("button", { name: "Enroll in study" }).click();
  await page.getByTestId("patient-studies").getByRole("link", { name: names.study }).waitFor();
  assert.equal(await page.getByTestId("patient-studies").locator("[data-consent=pending]").count(), 1);
});

test("a consent the patient grants through the API shows in the study, with its time", async () => {
  // Granting consent is the patient's act: the manager's grant is refused, the patient's own taken.
  await assert.rejects(
    call(BASE, managerToken, "POST", `/api/v1/patients/${ids.patient}/consents`, consentBody(true)),
    /: 403 /,
  );
  const patient = await patientToken(BASE, managerToken, ids.patient, ids.commonHealth);
  await call(BASE, patient, "POST", `/api/v1/patients/${ids.patient}/consents`, consentBody(true));
  await page.goto(`${BASE}/studies/${ids.study}`);
  await page.getByRole("heading", { level: 1, name: names.study }).waitFor();
  await settled(page);
  const row = page.getByTestId("enrolled-patients").locator(`tr[data-patient-id="${ids.patient}"]`);
  await row.locator("[data-consent=consented]").waitFor();
  assert.match(await row.textContent(), /Consented\s+\S+/);
  await screenshot(page, "studies");
});

test("the manager generates an invitation link with a copy button and its expiry", async () => {
  await page.getByRole("link", { name: `${names.given} ${names.family}`, exact: true }).click();
  await page.getByRole("heading", { level: 1, name: `${names.given} ${names.family}` }).waitFor();
  await settled(page);
  await page.getByRole("button", { name: "Generate invitation link for CommonHealth" }).click();
  const link = page.getByLabel("Invitation link for CommonHealth");
  await link.waitFor();
  const value = await link.inputValue();
  assert.match(value, /^https:\/\/commonhealth\.tcp\.org\?invitation=.+_[A-Za-z0-9]{32}$/);
  assert.match(await page.getByTestId("invitation-expiry").textContent(), /^Expires \S+/);
  await page.getByRole("button", { name: "Copy the invitation link" }).click();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), value);
  await screenshot(page, "patients");
});

test("the patient uploads blood-glucose observations through the API", async () => {
  const patient = await patientToken(BASE, managerToken, ids.patient, ids.commonHealth);
  const start = Date.parse("2025-03-01T00:00:00Z");
  const observations = Array.from({ length: UPLOADS }, (_, i) =>
    glucoseObservation(
      ids.patient,
      ids.dexcom,
      new Date(start + i * 15 * 60_000),
      Math.round(115 + 35 * Math.sin(i / 12)),
    ),
  );
  assert.equal(await uploadBatch(BASE, patient, observations), UPLOADS);
});

test("the observations show in the paged table and the chart", async () => {
  await page.locator("main").getByRole("link", { name: "Observations" }).click();
  await page.getByRole("heading", { level: 1, name: "Observations" }).waitFor();
  await settled(page);
  assert.equal(await page.getByLabel("Patient", { exact: true }).inputValue(), String(ids.patient));
  await page.getByLabel("Scope", { exact: true }).selectOption(GLUCOSE);
  await page.getByRole("button", { name: "Show observations" }).click();
  await page.waitForURL(/scope=omh/);
  await page.getByTestId("chart-summary").waitFor();
  assert.match(await page.getByTestId("chart-summary").textContent(), new RegExp(`${UPLOADS} values`));
  assert.equal((await page.locator("#obs-chart canvas").count()) > 0, true);
  const table = page.getByTestId("observations-table");
  assert.equal(await table.locator("tbody tr[data-observation]").count(), 25);
  assert.match(await table.locator("tbody tr").first().textContent(), /mg\/dL/);
  await page.getByText(`1–25 of ${UPLOADS}`).waitFor();
  await page.getByRole("button", { name: "Next" }).click();
  await page.getByText(`26–50 of ${UPLOADS}`).waitFor();
  await screenshot(page, "observations");
});

test("a withdrawal the manager records through the API hides the observations at once", async () => {
  await call(BASE, managerToken, "PATCH", `/api/v1/patients/${ids.patient}/consents`, consentBody(false));
  await page.reload();
  await page.getByRole("heading", { level: 1, name: "Observations" }).waitFor();
  await page.locator("[data-chart-empty]").waitFor();
  await page.getByTestId("observations-table").locator("[data-empty]").waitFor();
  assert.equal(await page.locator("tbody tr[data-observation]").count(), 0);
  await page.goto(`${BASE}/studies/${ids.study}`);
  await settled(page);
  await page.getByTestId("enrolled-patients").locator("[data-consent=revoked]").waitFor();
});

test("personal API keys: created once with a snippet, usable, then revoked", async () => {
  await page.getByRole("link", { name: "API keys" }).click();
  await page.getByRole("heading", { level: 1, name: "Personal API keys" }).waitFor();
  await settled(page);
  // Keyboard only: focus the label, type, Enter submits.
  await page.getByLabel("Label", { exact: true }).focus();
  await page.keyboard.type(`e2e ${run}`);
  await page.keyboard.press("Enter");
  await page.getByTestId("new-key").waitFor();
  const key = await page.getByLabel("API key", { exact: true }).inputValue();
  assert.ok(key.length > 20);
  assert.match(await page.locator("#snippet").textContent(), /JupyterHealthClient\(url=JHE_URL, token=token\)/);
  const exchange = () =>
    fetch(`${BASE}/o/token/`, {
      method: "POST",
      headers: { Authorization: `Basic ${key}`, "Content-Type": "application/x-www-form-urlencoded" },
      body: "grant_type=client_credentials",
    });
  assert.equal((await exchange()).status, 200);
  await screenshot(page, "api-keys");
  await page.getByRole("button", { name: `Revoke e2e ${run}` }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Revoke" }).click();
  await page.getByRole("button", { name: `Revoke e2e ${run}` }).waitFor({ state: "detached" });
  assert.equal((await exchange()).status, 401);
});

test("the superuser manages data sources and client apps", async () => {
  await logout(page);
  await login(page, ADMIN);
  await page.getByRole("link", { name: "Data sources" }).click();
  await page.getByRole("heading", { level: 1, name: "Data sources" }).waitFor();
  await page.getByRole("link", { name: "Dexcom" }).click();
  await page.getByRole("heading", { name: "Dexcom" }).waitFor();
  await settled(page);
  assert.equal(await page.getByLabel("Blood glucose", { exact: true }).isChecked(), true);
  assert.equal(await page.getByRole("button", { name: "Create", exact: true }).isVisible(), true);
  await screenshot(page, "data-sources");
  await page.getByRole("link", { name: "Client apps" }).click();
  await page.getByRole("heading", { level: 1, name: "Client apps" }).waitFor();
  await settled(page);
  await page.getByLabel("Name", { exact: true }).fill(`E2E App ${run}`);
  await page.getByLabel("OAuth client id", { exact: true }).fill(`e2e-app-${run}`);
  await page.getByLabel("Invitation URL", { exact: true }).fill("https://app.example.org/invite");
  await page.getByRole("button", { name: "Register app" }).click();
  assert.equal(await page.getByText("Enter a URL that contains CODE.").isVisible(), true);
  await page.getByLabel("Invitation URL", { exact: true }).fill("https://app.example.org/invite/CODE");
  await page.getByRole("button", { name: "Register app" }).click();
  await page.getByRole("heading", { name: `E2E App ${run}` }).waitFor();
  await settled(page);
  await screenshot(page, "clients");
});

test("a viewer finds no edit, create or delete controls", async () => {
  await logout(page);
  await login(page, VIEWER);
  const pages = [
    ["/organizations", "Lifespan Lab"],
    ["/studies", "Studies"],
    [`/studies/${ids.seededStudy}`, "Lifespan Study on BP & HR"],
    ["/patients", "Patients"],
    [`/patients/${ids.peter}`, "LlPatientPeter Jones"],
    [`/observations?patient=${ids.peter}&scope=omh:blood-pressure:4.0`, "Observations"],
  ];
  for (const [path, heading] of pages) {
    await page.goto(`${BASE}${path}`);
    await page.getByRole("heading", { level: 1, name: heading }).waitFor();
    await settled(page);
    assert.deepEqual(await editControls(page), [], `edit controls on ${path}`);
    await screenshot(page, `viewer-${path.split("?")[0].slice(1).replace(/\//g, "-")}`);
  }
  assert.equal(await page.getByRole("link", { name: "Data sources" }).count(), 0);
  await page.goto(`${BASE}/organizations`);
  await settled(page);
  assert.match(await page.getByTestId("my-role").textContent(), /Viewer/);
  assert.deepEqual(browser.errors, []);
});
