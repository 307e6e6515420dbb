// The README's address is http://127.0.0.1:PORT, but people type localhost: the web UI derives its
// OAuth redirect from the page's own origin, and local mode takes localhost, 127.0.0.1 and [::1]
// on the same port as one site. Logging in through http://localhost:PORT must work end to end.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { BASE, launch, login, screenshot, settled } from "./lib/browser.mjs";

let browser;

before(async () => {
  browser = await launch();
});

after(async () => {
  await browser?.close();
});

test("a manager logs in through http://localhost while the server listens on 127.0.0.1", async () => {
  const url = new URL(BASE);
  assert.equal(url.hostname, "127.0.0.1", "the server is started on 127.0.0.1");
  const localhost = `${url.protocol}//localhost:${url.port}`;
  const { page, errors } = browser;
  await login(page, "manager_mary@example.com", localhost);
  await settled(page);
  assert.equal(new URL(page.url()).hostname, "localhost", "the UI stays on localhost");
  await page.getByRole("link", { name: "Lifespan Lab" }).first().waitFor();
  await screenshot(page, "localhost-organizations");
  assert.deepEqual(errors, []);
});
