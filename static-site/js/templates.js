// Handlebars templates, precompiled from `templates/*.hbs` into `templates.gen.js` by
// scripts/vendor.mjs (the page loads only the Handlebars runtime: no eval, so the content security
// policy needs no 'unsafe-eval'), shared partials and helpers, and rendering into an element that
// keeps the keyboard focus where it was.
import { constants } from "./settings.js";
import compiled from "./templates.gen.js";

const Handlebars = window.Handlebars;
const PARTIALS = ["loading", "form-error", "pager", "consent", "study-links", "patient-fields"];
for (const name of PARTIALS) Handlebars.registerPartial(name, compiled[`partials/${name}`]);

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const ROLE_LABELS = { super_user: "Superuser", manager: "Manager", member: "Member", viewer: "Viewer" };

Handlebars.registerHelper({
  eq: (a, b) => a === b,
  not: (a) => !a,
  and: (...args) => args.slice(0, -1).every(Boolean),
  or: (...args) => args.slice(0, -1).some(Boolean),
  includes: (list, value) => Array.isArray(list) && list.includes(value),
  date: (iso) => (iso ? dateFormat.format(new Date(iso)) : ""),
  datetime: (iso) => (iso ? dateTimeFormat.format(new Date(iso)) : ""),
  number: (n) => (typeof n === "number" ? n.toLocaleString() : ""),
  plural: (n, word) => `${n.toLocaleString()} ${word}${n === 1 ? "" : "s"}`,
  orgType: (code) => constants.ORGANIZATION_TYPES[code] ?? code,
  dataSourceType: (code) => constants.DATA_SOURCE_TYPES[code] ?? code,
  roleLabel: (role) => ROLE_LABELS[role] ?? "No role",
});

/** The compiled template `templates/<name>.hbs`. */
export async function template(name) {
  const t = compiled[name];
  if (!t) throw new Error(`There is no page template ${name}.`);
  return t;
}

/** Renders `name` with `data` into `el`, keeping focus on the element with the same id. */
export async function render(el, name, data) {
  const html = (await template(name))(data);
  const focused = document.activeElement?.id;
  el.innerHTML = html;
  if (focused) document.getElementById(focused)?.focus();
}
