// Client apps page (the patient apps invitations open): the list, and for superusers creating,
// editing and deleting an app and choosing the data sources it brings.
import * as api from "../api.js";
import * as session from "../session.js";
import { navigate, reload } from "../router.js";
import { render as renderTemplate } from "../templates.js";
import { bind, confirmDialog, toast } from "../ui.js";

export const title = "Client apps";

export async function render(main, { params, signal, isCurrent }) {
  const canManage = session.canGlobally("client.manage");
  const id = params.id ? Number(params.id) : null;
  const [clients, sources, linked] = await Promise.all([
    api.all("/api/v1/clients"),
    id && canManage ? api.all("/api/v1/data_sources") : [],
    id ? api.get(`/api/v1/clients/${id}/data_sources`) : [],
  ]);
  const selected = clients.find((c) => c.id === id) ?? null;
  const linkedIds = linked.map((d) => d.id);
  if (!isCurrent()) return;
  await renderTemplate(main, "clients", {
    clients: clients.map((c) => ({ ...c, current: c.id === id })),
    selected,
    linked,
    sources: sources.map((d) => ({ ...d, checked: linkedIds.includes(d.id) })),
    canManage,
  });
  bind(main, signal, {
    lists: ["dataSources"],
    submit: {
      "create-client": async (v) => {
        const created = await api.post("/api/v1/clients", v);
        toast(`Registered the client app ${created.name}.`);
        navigate(`/clients/${created.id}`);
      },
      "edit-client": async (v) => {
        await api.patch(`/api/v1/clients/${id}`, v);
        toast("Saved the client app.");
        reload();
      },
      "client-sources": async (v) => {
        const wanted = v.dataSources.map(Number);
        for (const dataSourceId of wanted.filter((d) => !linkedIds.includes(d))) {
          await api.post(`/api/v1/clients/${id}/data_sources`, { dataSourceId });
        }
        for (const dataSourceId of linkedIds.filter((d) => !wanted.includes(d))) {
          await api.del(`/api/v1/clients/${id}/data_sources`, { dataSourceId });
        }
        toast("Saved the data sources of the app.");
        reload();
      },
    },
    click: {
      "delete-client": async () => {
        if (
          !(await confirmDialog(`Delete the client app ${selected.name}? Its invitation links stop working.`, "Delete"))
        )
          return;
        await api.del(`/api/v1/clients/${id}`);
        toast(`Deleted ${selected.name}.`);
        navigate("/clients");
      },
    },
  });
}
