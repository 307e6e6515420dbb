// The admin REST and FHIR API client: fetch with the bearer token, DRF pages and FHIR bundles,
// every error turned into a sentence (ApiError.message), and a fresh login on 401.
import { accessToken, login } from "./auth.js";
import { busy } from "./ui.js";

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

const STATUS_WORDS = {
  400: "The server did not accept the request.",
  401: "Your session has ended; please log in again.",
  403: "You do not have permission to do this.",
  404: "Not found.",
  405: "This action is not allowed.",
  409: "This conflicts with existing data.",
  410: "This is no longer available.",
  413: "The request is too large.",
  422: "The data was not valid.",
};

const humanize = (key) =>
  key
    .replace(/_/g, " ")
    .replace(/([a-z])([A-Z])/g, "$1 $2")
    .toLowerCase();

/** The sentence(s) an error body carries: DRF, OAuth, OperationOutcome or field errors. */
export function errorText(status, body) {
  let text = "";
  if (typeof body === "string") {
    text = body.length < 300 && !body.trimStart().startsWith("<") ? body.trim() : "";
  } else if (Array.isArray(body)) {
    text = body.filter((x) => typeof x === "string").join(" ");
  } else if (body && typeof body === "object") {
    if (body.resourceType === "OperationOutcome") {
      text = (body.issue || []).map((i) => i.diagnostics || i.details?.text || i.code).join(" ");
    } else if (typeof body.detail === "string") {
      text = body.detail;
    } else if (body.error_description || typeof body.error === "string") {
      text = body.error_description || body.error;
    } else {
      text = Object.entries(body)
        .map(([field, msgs]) => `${humanize(field)}: ${[].concat(msgs).join(" ")}`)
        .join("; ");
    }
  }
  if (text) return text;
  if (status >= 500) return `The server failed (status ${status}). Please try again later.`;
  return STATUS_WORDS[status] || `The server answered with status ${status}.`;
}

function buildUrl(path, query) {
  const url = new URL(path, window.location.origin);
  for (const [key, value] of Object.entries(query || {})) {
    for (const v of [].concat(value)) {
      if (v !== undefined && v !== null && v !== "") url.searchParams.append(key, v);
    }
  }
  return url;
}

/** The fields typed on the page, kept across a new sign-in (restored by `restoreDrafts`). */
const DRAFTS = "jhe:drafts";

function keepDrafts() {
  const fields = [...document.querySelectorAll("main form [name]")]
    .filter((el) => !["hidden", "password", "file", "submit"].includes(el.type))
    .map((el) => ({ form: el.form?.dataset.form ?? "", name: el.name, value: el.value, checked: el.checked }));
  sessionStorage.setItem(DRAFTS, JSON.stringify({ path: window.location.pathname + window.location.search, fields }));
}

/** Puts back what was typed before a sign-in, on the page it was typed on (once). */
export function restoreDrafts() {
  const raw = sessionStorage.getItem(DRAFTS);
  if (!raw) return;
  const { path, fields } = JSON.parse(raw);
  if (path !== window.location.pathname + window.location.search) return;
  sessionStorage.removeItem(DRAFTS);
  for (const f of fields) {
    const el = document.querySelector(`main form[data-form="${CSS.escape(f.form)}"] [name="${CSS.escape(f.name)}"]`);
    if (!el) continue;
    if (el.type === "checkbox" || el.type === "radio") el.checked = f.checked;
    else el.value = f.value;
  }
}

/** The session ended and could not be renewed: sign in again, keeping what was typed. */
async function signInAgain() {
  keepDrafts();
  await login();
}

async function request(method, path, { query, body } = {}) {
  const token = await accessToken();
  if (!token) {
    await signInAgain();
    throw new ApiError(401, STATUS_WORDS[401]);
  }
  const headers = { Authorization: `Bearer ${token}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const done = busy();
  let resp;
  try {
    resp = await fetch(buildUrl(path, query), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, `Could not reach the server (${e.message}). Check your connection and try again.`);
  } finally {
    done();
  }
  if (resp.status === 204) return null;
  const text = await resp.text();
  let data = text;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: keep the text for the error message
  }
  if (resp.status === 401) {
    await signInAgain();
  }
  if (!resp.ok) throw new ApiError(resp.status, errorText(resp.status, data), data);
  return data;
}

export const get = (path, query) => request("GET", path, { query });
export const post = (path, body, query) => request("POST", path, { body, query });
export const patch = (path, body, query) => request("PATCH", path, { body, query });
export const del = (path, body, query) => request("DELETE", path, { body, query });

/** Every item of a DRF-paged list (follows `next`; page size 1000). */
export async function all(path, query) {
  const items = [];
  let page = await get(path, { pageSize: 1000, ...query });
  items.push(...page.results);
  while (page.next) {
    page = await get(page.next);
    items.push(...page.results);
  }
  return items;
}

/** The `next` link of a FHIR Bundle, or null. */
export const nextLink = (bundle) => (bundle.link || []).find((l) => l.relation === "next")?.url ?? null;

/**
 * Walks every page of a FHIR search: `onPage(resources, loaded, total)` after each page; stops
 * with an AbortError when `signal` aborts (the user left the page).
 */
export async function fhirPages(path, query, { onPage, signal }) {
  let loaded = 0;
  let bundle = await get(path, query);
  for (;;) {
    signal.throwIfAborted();
    const page = (bundle.entry || []).map((e) => e.resource);
    loaded += page.length;
    onPage(page, loaded, bundle.total ?? loaded);
    const next = nextLink(bundle);
    if (!next) return;
    bundle = await get(next);
  }
}
