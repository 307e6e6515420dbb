// Studies page: the list of the caller's studies, creating one, and a study's details: edit,
// requested scopes, data sources and client apps, enrolled patients with the consent state of
// every requested scope, enrolling and removing patients.
import * as api from "../api.js";
import * as session from "../session.js";
import { patientConsents, stateOf } from "../consents.js";
import { loadPage, mapLimit } from "../paging.js";
import { navigate, reload } from "../router.js";
import { render as renderTemplate } from "../templates.js";
import { bind, confirmDialog, toast } from "../ui.js";

export const title = "Studies";

const MANAGE = "study.manage_for_organization";
const LISTS = ["scopes", "dataSources", "clients", "patientIds"];

export function render(main, ctx) {
  if (ctx.params.id) return detail(main, ctx, Number(ctx.params.id));
  if (ctx.url.pathname.endsWith("/new")) return create(main, ctx);
  return list(main, ctx);
}

async function list(main, { url, query, isCurrent }) {
  const organizationId = query.get("organization") || "";
  const [orgs, page, manageable] = await Promise.all([
    session.myOrganizations(),
    loadPage("/api/v1/studies", { organizationId }, url, "Study pages"),
    session.organizationsWhere(MANAGE),
  ]);
  if (!isCurrent()) return;
  await renderTemplate(main, "studies-list", {
    orgs: orgs.map((o) => ({ ...o, selected: String(o.id) === organizationId })),
    studies: page.items,
    pager: page.pager,
    canCreate: manageable.length > 0,
    organizationId,
  });
}

/** Everything a study's scope / data-source / client pickers need, marked with what is chosen. */
async function catalog(chosen = { scopes: [], dataSources: [], clients: [] }) {
  const [scopes, dataSources, clients] = await Promise.all([
    api.get("/api/v1/data_sources/all_scopes"),
    api.all("/api/v1/data_sources"),
    api.all("/api/v1/clients"),
  ]);
  const mark = (items, ids) => items.map((i) => ({ ...i, checked: ids.includes(i.id) }));
  return {
    scopes: mark(scopes, chosen.scopes),
    dataSources: mark(
      dataSources.map((d) => ({ ...d, supports: d.supportedScopes.map((s) => s.text).join(", ") })),
      chosen.dataSources,
    ),
    clients: mark(clients, chosen.clients),
  };
}

/** Adds and removes a study's scope requests, data sources and clients to match the form. */
async function applyLinks(studyId, values, current) {
  const diff = (wanted, have) => ({
    add: wanted.filter((id) => !have.includes(id)),
    remove: have.filter((id) => !wanted.includes(id)),
  });
  const plans = [
    ["scope_requests", "scopeCodeId", diff(values.scopes.map(Number), current.scopes)],
    ["data_sources", "dataSourceId", diff(values.dataSources.map(Number), current.dataSources)],
    ["clients", "clientId", diff(values.clients.map(Number), current.clients)],
  ];
  for (const [path, field, { add, remove }] of plans) {
    for (const id of add) await api.post(`/api/v1/studies/${studyId}/${path}`, { [field]: id });
    for (const id of remove) await api.del(`/api/v1/studies/${studyId}/${path}`, { [field]: id });
  }
}

async function create(main, { query, signal, isCurrent }) {
  const [orgs, choices] = await Promise.all([session.organizationsWhere(MANAGE), catalog()]);
  const preselected = query.get("organization");
  if (!isCurrent()) return;
  await renderTemplate(main, "study-new", {
    orgs: orgs.map((o) => ({ ...o, selected: String(o.id) === preselected })),
    ...choices,
  });
  bind(main, signal, {
    lists: LISTS,
    submit: {
      "create-study": async (v) => {
        const study = await api.post("/api/v1/studies", {
          organization: Number(v.organization),
          name: v.name,
          description: v.description,
          iconUrl: v.iconUrl || null,
        });
        await applyLinks(study.id, v, { scopes: [], dataSources: [], clients: [] });
        toast(`Created the study ${study.name}.`);
        navigate(`/studies/${study.id}`);
      },
    },
  });
}

async function detail(main, { signal, isCurrent }, id) {
  const [study, scopeRequests, dataSources, clients, enrolled] = await Promise.all([
    api.get(`/api/v1/studies/${id}`),
    api.get(`/api/v1/studies/${id}/scope_requests`),
    api.get(`/api/v1/studies/${id}/data_sources`),
    api.get(`/api/v1/studies/${id}/clients`),
    api.all(`/api/v1/studies/${id}/patients`),
  ]);
  const orgId = study.organization.id;
  const canEdit = session.can(MANAGE, orgId);
  const scopes = scopeRequests.map((r) => r.scopeCode);
  const current = {
    scopes: scopes.map((s) => s.id),
    dataSources: dataSources.map((d) => d.dataSource.id),
    clients: clients.map((c) => c.client.id),
  };
  const [consents, choices, orgPatients] = await Promise.all([
    mapLimit(enrolled, 4, (p) => patientConsents(p.id)),
    canEdit ? catalog(current) : null,
    canEdit ? api.all("/api/v1/patients", { organizationId: orgId }) : [],
  ]);
  const enrolledIds = new Set(enrolled.map((p) => p.id));
  if (!isCurrent()) return;
  await renderTemplate(main, "study-detail", {
    study,
    scopes,
    dataSources: dataSources.map((d) => d.dataSource),
    clients: clients.map((c) => c.client),
    patients: enrolled.map((p, i) => ({
      ...p,
      consents: scopes.map((code) => ({ code, state: stateOf(consents[i].byStudy, id, code) })),
    })),
    candidates: orgPatients.filter((p) => !enrolledIds.has(p.id)),
    canEdit,
    choices,
  });
  bind(main, signal, {
    lists: LISTS,
    submit: {
      "edit-study": async (v) => {
        await api.patch(`/api/v1/studies/${id}`, {
          name: v.name,
          description: v.description,
          iconUrl: v.iconUrl || null,
        });
        toast("Saved the study.");
        reload();
      },
      "study-links": async (v) => {
        await applyLinks(id, v, current);
        toast("Saved the scopes, data sources and client apps.");
        reload();
      },
      enroll: async (v) => {
        await api.post(`/api/v1/studies/${id}/patients`, { patientIds: v.patientIds.map(Number) });
        toast(v.patientIds.length === 1 ? "Enrolled the patient." : `Enrolled ${v.patientIds.length} patients.`);
        reload();
      },
    },
    click: {
      "delete-study": async () => {
        if (!(await confirmDialog(`Delete the study ${study.name}?`, "Delete"))) return;
        await api.del(`/api/v1/studies/${id}`);
        toast(`Deleted ${study.name}.`);
        navigate("/studies");
      },
      unenroll: async (el) => {
        if (!(await confirmDialog(`Remove ${el.dataset.name} from this study?`, "Remove"))) return;
        await api.del(`/api/v1/studies/${id}/patients`, { patientIds: [Number(el.dataset.patientId)] });
        toast(`Removed ${el.dataset.name} from the study.`);
        reload();
      },
    },
  });
}
