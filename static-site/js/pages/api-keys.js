// Personal API keys page: create a key (shown once, with a copy button and the snippet that
// gives it to jupyterhealth-client), list the caller's keys and revoke them.
import * as api from "../api.js";
import { reload } from "../router.js";
import { render as renderTemplate } from "../templates.js";
import { bind, confirmDialog, copyText, toast } from "../ui.js";

export const title = "API keys";

export async function render(main, { signal, isCurrent }) {
  const keys = await api.all("/api/v1/practitioner_clients");
  if (!isCurrent()) return;
  const draw = (created) => renderTemplate(main, "api-keys", { keys, created, origin: window.location.origin });
  await draw(null);
  bind(main, signal, {
    submit: {
      "create-key": async (v) => {
        const created = await api.post("/api/v1/practitioner_clients", { label: v.label });
        keys.unshift(created);
        await draw(created);
        main.querySelector("#new-key").focus();
        toast("Created the API key. Copy it now: it is not shown again.");
      },
    },
    click: {
      copy: async (el) => {
        const source = main.querySelector(`#${el.dataset.target}`);
        await copyText(source.value ?? source.textContent, source);
      },
      revoke: async (el) => {
        if (
          !(await confirmDialog(`Revoke the API key "${el.dataset.label}"? Notebooks using it stop working.`, "Revoke"))
        )
          return;
        await api.del(`/api/v1/practitioner_clients/${el.dataset.id}`);
        toast("Revoked the API key.");
        reload();
      },
    },
  });
}
