// A patient's own pages (phone-sized first): the studies that ask for their data, each scope with
// its decision and the controls to share or stop sharing it (consent is the patient's own act);
// their data as a table and a chart; and who accessed it (their access log).
import * as api from "../api.js";
import { OMH_SYSTEM, decodePoint, timeOf, valueText } from "../omh.js";
import { reload } from "../router.js";
import * as session from "../session.js";
import { render as renderTemplate } from "../templates.js";
import { bind, confirmDialog, toast } from "../ui.js";

const me = () => session.patientId();

/** The studies of the patient with one row per requested scope and its state. */
function studiesOf(consents) {
  const byId = new Map();
  const add = (s, rows) => {
    const entry = byId.get(s.id) ?? { id: s.id, name: s.name, description: s.description, organization: s.organization, scopes: [] };
    entry.scopes.push(...rows);
    byId.set(s.id, entry);
  };
  for (const s of consents.studiesPendingConsent ?? []) {
    add(s, (s.pendingScopeConsents ?? []).map((c) => ({ code: c.code, state: "pending" })));
  }
  for (const s of consents.studies ?? []) {
    add(
      s,
      (s.scopeConsents ?? []).map((c) => ({ code: c.code, state: c.consented ? "shared" : "not-shared", time: c.consentedTime })),
    );
  }
  const studies = [...byId.values()].sort((a, b) => a.name.localeCompare(b.name));
  for (const s of studies) s.scopes.sort((a, b) => (a.code.text ?? a.code.codingCode).localeCompare(b.code.text ?? b.code.codingCode));
  return studies;
}

const decision = (studyId, code, consented) => ({
  studyScopeConsents: [{ studyId, scopeConsents: [{ codingSystem: code.codingSystem, codingCode: code.codingCode, consented }] }],
});

export const studies = {
  title: "My studies",
  async render(main, { signal, isCurrent }) {
    const consents = await api.get(`/api/v1/patients/${me()}/consents`);
    if (!isCurrent()) return;
    const list = studiesOf(consents);
    await renderTemplate(main, "me-studies", { studies: list });
    const find = (el) => {
      const study = list.find((s) => String(s.id) === el.dataset.study);
      return { study, scope: study?.scopes.find((x) => x.code.codingCode === el.dataset.code) };
    };
    bind(main, signal, {
      click: {
        share: async (el) => {
          const { study, scope } = find(el);
          await api.post(`/api/v1/patients/${me()}/consents`, decision(study.id, scope.code, true));
          toast(`You now share your ${scope.code.text ?? scope.code.codingCode} data with ${study.name}.`);
          reload();
        },
        decline: async (el) => {
          const { study, scope } = find(el);
          await api.post(`/api/v1/patients/${me()}/consents`, decision(study.id, scope.code, false));
          toast(`You do not share your ${scope.code.text ?? scope.code.codingCode} data with ${study.name}.`);
          reload();
        },
        withdraw: async (el) => {
          const { study, scope } = find(el);
          const what = scope.code.text ?? scope.code.codingCode;
          if (!(await confirmDialog(`Stop sharing your ${what} data with ${study.name}? The study no longer sees any of it, from now on.`, "Stop sharing")))
            return;
          await api.patch(`/api/v1/patients/${me()}/consents`, decision(study.id, scope.code, false));
          toast(`${study.name} no longer sees your ${what} data.`);
          reload();
        },
      },
    });
  },
};

const PAGE = 100;

export const data = {
  title: "My data",
  async render(main, { query, signal, isCurrent }) {
    const consents = await api.get(`/api/v1/patients/${me()}/consents`);
    const scopes = new Map();
    for (const s of studiesOf(consents)) for (const x of s.scopes) if (x.code.codingSystem === OMH_SYSTEM) scopes.set(x.code.codingCode, x.code);
    const scopeList = [...scopes.values()].sort((a, b) => (a.text ?? "").localeCompare(b.text ?? ""));
    const scope = query.get("scope") || scopeList[0]?.codingCode || "";
    let bundle = { entry: [], total: 0 };
    if (scope) {
      bundle = await api.get("/FHIR/R5/Observation", { patient: me(), code: `${OMH_SYSTEM}|${scope}`, _count: PAGE });
    }
    if (!isCurrent()) return;
    const points = (bundle.entry ?? []).map(({ resource: r }) => {
      const point = decodePoint(r);
      return { id: r.id, time: timeOf(r), iso: r.effectiveDateTime ?? r.effectivePeriod?.start, body: point?.body, value: point ? valueText(point.body) : "" };
    });
    await renderTemplate(main, "me-data", {
      scopes: scopeList.map((s) => ({ ...s, selected: s.codingCode === scope })),
      scope: scopes.get(scope),
      rows: points,
      total: bundle.total ?? points.length,
      more: (bundle.total ?? 0) > points.length,
      page: PAGE,
    });
    const host = main.querySelector("[data-chart]");
    if (host && points.some((p) => p.body)) {
      const { drawChart, seriesOf } = await import("../chart.js");
      const series = seriesOf(points);
      if (series.ys.length && isCurrent()) drawChart(host, series, signal);
    }
    bind(main, signal, {
      change: {
        scope: (el) => {
          const url = new URL(window.location.href);
          url.searchParams.set("scope", el.value);
          window.history.replaceState(null, "", url);
          reload();
        },
      },
    });
  },
};

export const access = {
  title: "Who saw my data",
  async render(main, { isCurrent }) {
    const log = await api.get(`/api/v1/patients/${me()}/audit`, { page_size: 100 });
    if (!isCurrent()) return;
    const rows = (log.results ?? []).map((r) => ({
      ...r,
      mine: r.agent?.userId === session.user().id,
      who: r.agent?.userId === session.user().id ? "You" : (r.agent?.email ?? "Someone not signed in"),
      refused: r.outcome !== "allowed",
    }));
    await renderTemplate(main, "me-access", { rows });
  },
};
