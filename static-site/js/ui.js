// Small UI helpers shared by the pages: the global busy bar, toasts, the confirm dialog, copy
// buttons, form validation and submission with errors in words, and event wiring per page.

let inFlight = 0;
let busyTimer = null;

/** Marks one request in flight; returns the function that marks it done. */
export function busy() {
  inFlight += 1;
  if (inFlight === 1) {
    busyTimer = setTimeout(() => {
      document.getElementById("busy").hidden = false;
    }, 150);
  }
  let done = false;
  return () => {
    if (done) return;
    done = true;
    inFlight -= 1;
    if (inFlight === 0) {
      clearTimeout(busyTimer);
      document.getElementById("busy").hidden = true;
    }
  };
}

/** A short message in the corner; errors stay until closed. */
export function toast(message, kind = "success") {
  const el = document.createElement("div");
  el.className = `toast align-items-center text-bg-${kind} border-0`;
  el.setAttribute("role", kind === "danger" ? "alert" : "status");
  const body = document.createElement("div");
  body.className = "d-flex";
  body.innerHTML = `<div class="toast-body"></div>
    <button type="button" class="btn-close btn-close-white me-2 m-auto" data-bs-dismiss="toast" aria-label="Close"></button>`;
  body.querySelector(".toast-body").textContent = message;
  el.append(body);
  document.getElementById("toasts").append(el);
  el.addEventListener("hidden.bs.toast", () => el.remove());
  window.bootstrap.Toast.getOrCreateInstance(el, { autohide: kind !== "danger", delay: 4000 }).show();
}

/** Asks before a destructive action; resolves true when confirmed. */
export function confirmDialog(message, confirmLabel = "Confirm") {
  const el = document.getElementById("confirm-dialog");
  el.querySelector("#confirm-message").textContent = message;
  const ok = el.querySelector("#confirm-ok");
  ok.textContent = confirmLabel;
  const modal = window.bootstrap.Modal.getOrCreateInstance(el);
  return new Promise((resolve) => {
    let confirmed = false;
    const onOk = () => {
      confirmed = true;
      modal.hide();
    };
    ok.addEventListener("click", onOk, { once: true });
    el.addEventListener(
      "hidden.bs.modal",
      () => {
        ok.removeEventListener("click", onOk);
        resolve(confirmed);
      },
      { once: true },
    );
    modal.show();
  });
}

/** Copies text to the clipboard; if that is refused, selects `source` for a manual copy. */
export async function copyText(text, source) {
  try {
    await navigator.clipboard.writeText(text);
    toast("Copied to the clipboard.");
  } catch {
    if (source?.select) {
      source.focus();
      source.select();
    } else if (source) {
      window.getSelection().selectAllChildren(source);
    }
    toast("Press Ctrl+C (⌘C) to copy the selected text.", "secondary");
  }
}

/** The values of a form; fields named in `lists` give arrays (checkbox groups, multi-selects). */
export function formValues(form, lists = []) {
  const data = new FormData(form);
  const values = {};
  for (const key of new Set(data.keys())) {
    values[key] = lists.includes(key) ? data.getAll(key) : String(data.get(key)).trim();
  }
  for (const key of lists) values[key] ??= [];
  return values;
}

/** Shows an error sentence in the form's alert region (or clears it). */
export function showFormError(form, message) {
  const region = form.querySelector("[data-form-error]");
  if (!region) {
    if (message) toast(message, "danger");
    return;
  }
  region.textContent = message || "";
  region.hidden = !message;
  if (message) region.focus();
}

/**
 * Wires a page's events under `root` until `signal` aborts:
 * `submit[formName](values, form)` for `<form data-form="formName">` (validated first, the submit
 * button disabled with a spinner while it runs, errors shown in the form), and
 * `click[action](element, event)` for `[data-action="action"]`, `change[name](element)`.
 */
export function bind(root, signal, { submit = {}, click = {}, change = {}, lists = [] } = {}) {
  root.addEventListener(
    "submit",
    async (event) => {
      const form = event.target.closest("form[data-form]");
      const handler = form && submit[form.dataset.form];
      if (!handler) return;
      event.preventDefault();
      showFormError(form, "");
      if (!form.checkValidity()) {
        form.classList.add("was-validated");
        form.querySelector(":invalid")?.focus();
        return;
      }
      const buttons = [...form.querySelectorAll("button[type=submit]")];
      buttons.forEach((b) => {
        b.disabled = true;
        b.insertAdjacentHTML(
          "afterbegin",
          '<span class="spinner-border spinner-border-sm me-1" aria-hidden="true"></span>',
        );
      });
      try {
        await handler(formValues(form, lists), form);
      } catch (e) {
        if (form.isConnected) showFormError(form, e.message);
        else toast(e.message, "danger");
      } finally {
        buttons.forEach((b) => {
          b.disabled = false;
          b.querySelector(".spinner-border")?.remove();
        });
      }
    },
    { signal },
  );
  root.addEventListener(
    "click",
    async (event) => {
      const el = event.target.closest("[data-action]");
      const handler = el && click[el.dataset.action];
      if (!handler || el.disabled) return;
      event.preventDefault();
      el.disabled = true;
      try {
        await handler(el, event);
      } catch (e) {
        toast(e.message, "danger");
      } finally {
        el.disabled = false;
      }
    },
    { signal },
  );
  root.addEventListener(
    "change",
    async (event) => {
      const handler = change[event.target.name];
      if (!handler) return;
      try {
        await handler(event.target, event);
      } catch (e) {
        toast(e.message, "danger");
      }
    },
    { signal },
  );
}
