// The browser side of the tests: headless Chromium (the system /usr/bin/chromium) driven by
// playwright-core with a fresh profile, logging in through the real login form, screenshots,
// and finding controls that change data.
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

export const BASE = process.env.JHE_BASE_URL;
export const PASSWORD = process.env.JHE_DEMO_PASSWORD ?? "Jhe1234!";
const SHOTS = process.env.SCREENSHOT_DIR ?? "test-output/screenshots";

if (!BASE) throw new Error("Set JHE_BASE_URL to the URL of a running `jhe serve` (tests/harness/spa-e2e.sh does).");

const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

/** A browser with a fresh user-data-dir; `close()` removes the profile. */
export async function launch() {
  const profile = mkdtempSync(join(tmpdir(), "jhe-spa-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: ARGS,
    viewport: { width: 1366, height: 900 },
    locale: "en-US",
    timezoneId: "UTC",
    permissions: ["clipboard-read", "clipboard-write"],
  });
  context.setDefaultTimeout(20_000);
  const page = context.pages()[0] ?? (await context.newPage());
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  return {
    context,
    page,
    errors,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Logs in from the signed-out home page through the server's login form (at `base`, by default
 * the server's own address). */
export async function login(page, email, base = BASE, landing = /\/organizations/) {
  await page.goto(`${base}/`);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForURL(/\/accounts\/login\//);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(landing);
  await page.locator("#who").filter({ hasText: email }).waitFor({ state: "attached" });
}

/** Logs out with the navigation's button and waits for the signed-out page. */
export async function logout(page) {
  await page.getByRole("button", { name: "Log out" }).click();
  await page.getByRole("button", { name: "Log in" }).waitFor();
}

/** Waits until the page has drawn (no loading indicator, no busy bar). */
export async function settled(page) {
  await page.locator("main h1").first().waitFor();
  await page
    .locator("main [role=status]:has(.spinner-border)")
    .first()
    .waitFor({ state: "detached" })
    .catch(() => {});
  await page.locator("#busy").waitFor({ state: "hidden" });
}

/** Saves a full-page screenshot as `<SCREENSHOT_DIR>/<name>.png`. */
export async function screenshot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** Visible, enabled controls that would change data: marked ones or buttons named like it. */
export async function editControls(page) {
  return page.evaluate(() => {
    const words = /\b(create|add|new|save|update|delete|remove|enroll|generate|register|revoke)\b/i;
    const visible = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden";
    const found = [];
    for (const el of document.querySelectorAll(
      "main [data-mutates], main button, main a.btn, main input[type=submit]",
    )) {
      if (!visible(el) || el.disabled) continue;
      if (el.hasAttribute("data-mutates") || words.test(el.textContent))
        found.push(el.textContent.trim().replace(/\s+/g, " ") || el.outerHTML.slice(0, 80));
    }
    return found;
  });
}
