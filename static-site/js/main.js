// Entry point: completes an OIDC callback, makes sure someone is signed in, loads their roles,
// then routes every path to its page module and draws the navigation for the signed-in user.
import * as auth from "./auth.js";
import * as session from "./session.js";
import { constants, oidcSettings } from "./settings.js";
import { navigate, route, start } from "./router.js";
import { render } from "./templates.js";
import { bind } from "./ui.js";
import { restoreDrafts } from "./api.js";

const main = document.getElementById("main");

/** A page whose module is loaded when first shown (a page loads only what it needs). */
const lazy = (title, load) => ({ title, render: async (el, ctx) => (await load()).render(el, ctx) });
const organizations = lazy("Organizations", () => import("./pages/organizations.js"));
const studies = lazy("Studies", () => import("./pages/studies.js"));
const patients = lazy("Patients", () => import("./pages/patients.js"));
const observations = lazy("Observations", () => import("./pages/observations.js"));
const dataSources = lazy("Data sources", () => import("./pages/data-sources.js"));
const clients = lazy("Client apps", () => import("./pages/clients.js"));
const apiKeys = lazy("API keys", () => import("./pages/api-keys.js"));
const audit = lazy("Audit trail", () => import("./pages/audit.js"));
const profile = lazy("Profile", () => import("./pages/profile.js"));
const myStudies = lazy("My studies", () => import("./pages/me.js").then((m) => m.studies));
const myData = lazy("My data", () => import("./pages/me.js").then((m) => m.data));
const myAccess = lazy("Who saw my data", () => import("./pages/me.js").then((m) => m.access));

// Patients land on their studies; practitioners on the organizations.
const home = {
  title: "Home",
  render: () => navigate(session.isPatient() ? "/me" : "/organizations", { replace: true }),
};
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
route("/audit", audit);
route("/profile", profile);
route("/me", myStudies);
route("/me/data", myData);
route("/me/access", myAccess);

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
  // An error belongs to the page it happened on.
  for (const t of document.querySelectorAll("#toasts .toast.text-bg-danger")) t.remove();
  markNav(ctx.url.pathname);
  if (!ctx.reloading) await render(main, "partials/loading", {});
  try {
    await page.render(main, ctx);
    if (ctx.isCurrent()) restoreDrafts();
  } catch (e) {
    if (ctx.isCurrent()) await render(main, "error", { message: e.message });
  }
  if (ctx.isCurrent() && !ctx.reloading) main.querySelector("h1")?.focus();
}

async function signedOut(message) {
  document.title = "Sign in · JupyterHealth Exchange";
  await render(main, "signed-out", { message });
  bind(main, new AbortController().signal, { click: { login: () => auth.login("/") } });
}

/** On a phone the menu is a drop-down: a choice closes it (once it has finished opening). */
function closeMenuOnChoice() {
  const menu = document.getElementById("nav-links");
  const collapse = () => window.bootstrap.Collapse.getOrCreateInstance(menu, { toggle: false });
  let closeWhenShown = false;
  menu.addEventListener("click", (e) => {
    if (!e.target.closest("a.nav-link")) return;
    if (menu.classList.contains("collapsing")) closeWhenShown = true;
    else collapse().hide();
  });
  menu.addEventListener("shown.bs.collapse", () => {
    if (closeWhenShown) {
      closeWhenShown = false;
      collapse().hide();
    }
  });
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
  document.getElementById("who-link").href = session.isPatient() ? "/me" : "/profile";
  document.getElementById(session.isPatient() ? "nav-patient" : "nav-main").hidden = false;
  document.getElementById("nav-user").hidden = false;
  for (const el of document.querySelectorAll("[data-superuser]")) el.hidden = !session.isSuperuser();
  for (const el of document.querySelectorAll("[data-practitioner]")) el.hidden = session.isPatient();
  const manages = session.isSuperuser() || (await session.myOrganizations()).some((o) => session.roleIn(o.id) === "manager");
  for (const el of document.querySelectorAll("[data-manager]")) el.hidden = !manages;
  document.getElementById("logout").addEventListener("click", () => auth.logout());
  closeMenuOnChoice();
  await start(showPage);
}

boot();
