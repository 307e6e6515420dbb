// Data sources page (devices and apps that produce data): the list with supported scopes, and
// for superusers creating, editing, deleting a data source and choosing its supported scopes.
import * as api from "../api.js";
import * as session from "../session.js";
import { constants } from "../settings.js";
import { navigate, reload } from "../router.js";
import { render as renderTemplate } from "../templates.js";
import { bind, confirmDialog, toast } from "../ui.js";

export const title = "Data sources";

const typeOptions = (selected) =>
  Object.entries(constants.DATA_SOURCE_TYPES).map(([code, label]) => ({ code, label, selected: code === selected }));

export async function render(main, { params, signal, isCurrent }) {
  const canManage = session.canGlobally("data_source.manage");
  const id = params.id ? Number(params.id) : null;
  const [sources, scopes, supported] = await Promise.all([
    api.all("/api/v1/data_sources"),
    id && canManage ? api.get("/api/v1/data_sources/all_scopes") : [],
    id ? api.get(`/api/v1/data_sources/${id}/supported_scopes`) : [],
  ]);
  const selected = sources.find((s) => s.id === id) ?? null;
  const supportedIds = supported.map((s) => s.scopeCode.id);
  if (!isCurrent()) return;
  await renderTemplate(main, "data-sources", {
    sources: sources.map((s) => ({ ...s, current: s.id === id })),
    selected,
    supported: supported.map((s) => s.scopeCode),
    scopes: scopes.map((s) => ({ ...s, checked: supportedIds.includes(s.id) })),
    types: typeOptions("personal_device"),
    editTypes: typeOptions(selected?.type),
    canManage,
  });
  bind(main, signal, {
    lists: ["scopes"],
    submit: {
      "create-source": async (v) => {
        const created = await api.post("/api/v1/data_sources", { name: v.name, type: v.type });
        toast(`Created the data source ${created.name}.`);
        navigate(`/data-sources/${created.id}`);
      },
      "edit-source": async (v) => {
        await api.patch(`/api/v1/data_sources/${id}`, { name: v.name, type: v.type });
        toast("Saved the data source.");
        reload();
      },
      "source-scopes": async (v) => {
        const wanted = v.scopes.map(Number);
        for (const scopeCodeId of wanted.filter((s) => !supportedIds.includes(s))) {
          await api.post(`/api/v1/data_sources/${id}/supported_scopes`, { scopeCodeId });
        }
        for (const scopeCodeId of supportedIds.filter((s) => !wanted.includes(s))) {
          await api.del(`/api/v1/data_sources/${id}/supported_scopes`, { scopeCodeId });
        }
        toast("Saved the supported scopes.");
        reload();
      },
    },
    click: {
      "delete-source": async () => {
        if (!(await confirmDialog(`Delete the data source ${selected.name}?`, "Delete"))) return;
        await api.del(`/api/v1/data_sources/${id}`);
        toast(`Deleted ${selected.name}.`);
        navigate("/data-sources");
      },
    },
  });
}
