// History-API routing: path patterns to page modules, link clicks handled in-app, the page's
// events scoped to an AbortSignal that ends when the user leaves the page.
const routes = [];
let current = null;
let renderPage = null;

/** Registers `pattern` (e.g. "/patients/:id") for `page` ({title, render(main, ctx)}). */
export function route(pattern, page) {
  const names = [];
  const regex = new RegExp(
    `^${pattern.replace(/:(\w+)/g, (_, name) => {
      names.push(name);
      return "([^/]+)";
    })}/?$`,
  );
  routes.push({ regex, names, page });
}

function match(pathname) {
  for (const r of routes) {
    const m = r.regex.exec(pathname);
    if (m)
      return { page: r.page, params: Object.fromEntries(r.names.map((n, i) => [n, decodeURIComponent(m[i + 1])])) };
  }
  return null;
}

/** Goes to `path` (pushing history unless `replace`) and renders it. */
export function navigate(path, { replace = false } = {}) {
  if (replace) window.history.replaceState(null, "", path);
  else window.history.pushState(null, "", path);
  return show();
}

/** Renders the current location again (after a change the page cannot patch in place). */
export const reload = () => show(true);

async function show(reloading = false) {
  current?.abort();
  const controller = new AbortController();
  current = controller;
  const url = new URL(window.location.href);
  const found = match(url.pathname);
  await renderPage(found, {
    url,
    query: url.searchParams,
    params: found?.params ?? {},
    signal: controller.signal,
    reloading,
    isCurrent: () => current === controller,
  });
}

function onClick(event) {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey)
    return;
  const a = event.target.closest("a[href]");
  if (!a || a.target || a.hasAttribute("download")) return;
  const url = new URL(a.href);
  if (url.origin !== window.location.origin || url.hash) return;
  if (!match(url.pathname)) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
}

/** A filter form (`<form data-filter action=PATH>`) navigates to PATH with its non-empty fields. */
function onSubmit(event) {
  const form = event.target.closest("form[data-filter]");
  if (!form) return;
  event.preventDefault();
  const query = new URLSearchParams();
  for (const [key, value] of new FormData(form)) if (value !== "") query.append(key, value);
  const search = query.toString();
  navigate(`${new URL(form.action).pathname}${search ? `?${search}` : ""}`);
}

/** Starts routing; `render(found, ctx)` draws a matched page (or the not-found page). */
export function start(render) {
  renderPage = render;
  document.addEventListener("click", onClick);
  document.addEventListener("submit", onSubmit);
  window.addEventListener("popstate", () => show());
  return show();
}
