// Entry point: completes an OIDC callback, makes sure someone is signed in, loads their roles,
// then routes every path to its page module and draws the navigation for the signed-in user.
import * as auth from "./auth.js";
import * as session from "./session.js";
import { constants, oidcSettings } from "./settings.js";
import { navigate, route, start } from "./router.js";
import { render } from "./templates.js";
import { bind } from "./ui.js";
import * as organizations from "./pages/organizations.js";
import * as studies from "./pages/studies.js";
import * as patients from "./pages/patients.js";
import * as observations from "./pages/observations.js";
import * as dataSources from "./pages/data-sources.js";
import * as clients from "./pages/clients.js";
import * as apiKeys from "./pages/api-keys.js";

const main = document.getElementById("main");

const home = { title: "Home", render: () => navigate("/organizations", { replace: true }) };
route("/", home);
route("/organizations", organizations);
route("/organizations/:id", organizations);
route("/studies", studies);
route("/studies/new", studies);
route("/studies/:id", studies);
route("/patients", patients);
route("/patients/new", patients);
route("/patients/:id", patients);
route("/observations", observations);
route("/data-sources", dataSources);
route("/data-sources/:id", dataSources);
route("/clients", clients);
route("/clients/:id", clients);
route("/api-keys", apiKeys);

function markNav(pathname) {
  for (const a of document.querySelectorAll("#nav-links a.nav-link")) {
    const here = pathname === a.pathname || pathname.startsWith(`${a.pathname}/`);
    a.classList.toggle("active", here);
    if (here) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

async function showPage(found, ctx) {
  if (!found) {
    document.title = "Not found · JupyterHealth Exchange";
    await render(main, "not-found", { path: ctx.url.pathname });
    return;
  }
  const { page } = found;
  document.title = `${page.title} · JupyterHealth Exchange`;
  markNav(ctx.url.pathname);
  if (!ctx.reloading) await render(main, "partials/loading", {});
  try {
    await page.render(main, ctx);
  } catch (e) {
    if (ctx.isCurrent()) await render(main, "error", { message: e.message });
  }
  if (ctx.isCurrent() && !ctx.reloading) main.querySelector("h1")?.focus();
}

async function signedOut(message) {
  document.title = "Sign in · JupyterHealth Exchange";
  await render(main, "signed-out", { message });
  bind(main, new AbortController().signal, { click: { login: () => auth.login("/organizations") } });
}

async function boot() {
  if (!oidcSettings || !constants) {
    await render(main, "error", {
      message: "The server settings (/common/server-settings.js) could not be loaded. Reload the page.",
    });
    return;
  }
  route(auth.callbackPath(), home);
  if (window.location.pathname.replace(/\/$/, "") === auth.callbackPath()) {
    try {
      window.history.replaceState(null, "", await auth.completeLogin());
    } catch (e) {
      window.history.replaceState(null, "", "/");
      await signedOut(`The login did not complete: ${e.message}`);
      return;
    }
  }
  if (!(await auth.currentUser())) {
    if (window.location.pathname === "/") await signedOut();
    else await auth.login();
    return;
  }
  try {
    await session.load();
  } catch (e) {
    await render(main, "error", { message: e.message });
    return;
  }
  const me = session.user();
  document.getElementById("who").textContent = me.email;
  document.getElementById("nav-main").hidden = false;
  document.getElementById("nav-user").hidden = false;
  for (const el of document.querySelectorAll("[data-superuser]")) el.hidden = !session.isSuperuser();
  document.getElementById("logout").addEventListener("click", () => auth.logout());
  await start(showPage);
}

boot();
