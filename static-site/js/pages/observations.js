// Observations page: FHIR Observations of a patient and/or a study, filtered by scope and dates,
// in a paged table, and for one patient and a numeric scope a time-series chart of every value
// in range (fetched 1,000 per page with progress, so a month of CGM readings loads quickly).
import * as api from "../api.js";
import { drawChart, seriesOf } from "../chart.js";
import { OMH_SYSTEM, decodePoint, timeOf, valueText } from "../omh.js";
import { navigate } from "../router.js";
import { render as renderTemplate } from "../templates.js";
import { bind } from "../ui.js";

export const title = "Observations";

const TABLE_PAGE_SIZE = 25;
const CHART_PAGE_SIZE = 1000;

const filtersOf = (query) =>
  Object.fromEntries(["study", "patient", "scope", "from", "to"].map((k) => [k, query.get(k) || ""]));

/** FHIR search parameters for the filters (the date range is inclusive, by day). */
const searchOf = (f) => ({
  patient: f.patient,
  "patient._has:Group:member:_id": f.study,
  code: f.scope ? `${OMH_SYSTEM}|${f.scope}` : "",
  date: [f.from && `ge${f.from}`, f.to && `le${f.to}`],
});

const mark = (items, value, key = "id") => items.map((i) => ({ ...i, selected: String(i[key]) === value }));

export async function render(main, { query, signal, isCurrent }) {
  const f = filtersOf(query);
  const [studies, patients, scopes, dataSources] = await Promise.all([
    api.all("/api/v1/studies"),
    f.study ? api.all(`/api/v1/studies/${f.study}/patients`) : api.all("/api/v1/patients"),
    f.study
      ? api.get(`/api/v1/studies/${f.study}/scope_requests`).then((rs) => rs.map((r) => r.scopeCode))
      : api.get("/api/v1/data_sources/all_scopes"),
    api.all("/api/v1/data_sources"),
  ]);
  const omhScopes = scopes.filter((s) => s.codingSystem === OMH_SYSTEM);
  const names = new Map(patients.map((p) => [`Patient/${p.id}`, `${p.nameGiven} ${p.nameFamily}`]));
  const sources = new Map(dataSources.map((d) => [`Device/${d.id}`, d.name]));
  const scope = omhScopes.find((s) => s.codingCode === f.scope);
  const patient = patients.find((p) => String(p.id) === f.patient);
  if (!isCurrent()) return;
  await renderTemplate(main, "observations", {
    f,
    studies: mark(studies, f.study),
    patients: mark(patients, f.patient),
    scopes: mark(omhScopes, f.scope, "codingCode"),
    chart: Boolean(f.patient && f.scope),
    scope,
    patient,
  });

  const search = searchOf(f);
  const tableEl = main.querySelector("#obs-table");
  const previous = [];
  let shown = null;
  let nextUrl = null;
  let first = 1;
  let count = 0;

  async function showTable(url) {
    const bundle = url
      ? await api.get(url)
      : await api.get("/FHIR/R5/Observation", { ...search, _count: TABLE_PAGE_SIZE });
    if (!isCurrent()) return;
    const rows = (bundle.entry || []).map(({ resource: r }) => {
      const point = decodePoint(r);
      return {
        id: r.id,
        time: r.effectiveDateTime ?? r.effectivePeriod?.start,
        patientRef: r.subject?.reference,
        patientId: r.subject?.reference?.split("/")[1],
        patient: names.get(r.subject?.reference) ?? r.subject?.reference,
        scope: r.code?.coding?.[0]?.display ?? r.code?.coding?.[0]?.code,
        value: point ? valueText(point.body) : "",
        source: sources.get(r.device?.reference) ?? "",
      };
    });
    shown = url;
    nextUrl = api.nextLink(bundle);
    count = rows.length;
    const total = bundle.total ?? rows.length;
    await renderTemplate(tableEl, "observations-table", {
      rows,
      pager: {
        label: "Observation pages",
        action: "obs-page",
        previous: previous.length > 0,
        next: Boolean(nextUrl),
        text: total
          ? `${first.toLocaleString()}–${(first + rows.length - 1).toLocaleString()} of ${total.toLocaleString()}`
          : "",
      },
    });
  }

  async function showChart() {
    const host = main.querySelector("#obs-chart");
    const bar = host.querySelector(".progress-bar");
    const progress = host.querySelector("[role=progressbar]");
    const text = host.querySelector("[data-progress-text]");
    // Each page is decoded as it arrives, while the next one loads.
    const points = [];
    await api.fhirPages(
      "/FHIR/R5/Observation",
      { ...search, _count: CHART_PAGE_SIZE, _sort: "date" },
      {
        signal,
        onPage: (page, loaded, total) => {
          for (const r of page) points.push({ time: timeOf(r), body: decodePoint(r)?.body });
          const pct = total ? Math.round((100 * loaded) / total) : 100;
          bar.style.width = `${pct}%`;
          progress.setAttribute("aria-valuenow", String(pct));
          text.textContent = `Loaded ${loaded.toLocaleString()} of ${total.toLocaleString()} observations…`;
        },
      },
    );
    const series = seriesOf(points);
    const times = series.x;
    await renderTemplate(host, "observations-chart", {
      scope,
      patient,
      count: times.length,
      empty: times.length === 0,
      numeric: series.stats.length > 0,
      from: times.length ? new Date(times[0] * 1000).toISOString() : null,
      to: times.length ? new Date(times[times.length - 1] * 1000).toISOString() : null,
      stats: series.stats,
    });
    if (series.stats.length && times.length) drawChart(host.querySelector("[data-chart]"), series, signal);
  }

  bind(main, signal, {
    submit: {
      filter: async (v) => {
        if (v.from && v.to && v.from > v.to) throw new Error("The start date must not be after the end date.");
        const params = new URLSearchParams(Object.entries(v).filter(([, value]) => value));
        navigate(`/observations${params.size ? `?${params}` : ""}`);
      },
    },
    click: {
      "obs-page": async (el) => {
        if (el.dataset.page === "next") {
          previous.push({ url: shown, first });
          first += count;
          await showTable(nextUrl);
        } else {
          const back = previous.pop();
          first = back.first;
          await showTable(back.url);
        }
        tableEl.querySelector("caption")?.focus();
      },
    },
  });

  const chartTask = f.patient && f.scope ? showChart() : Promise.resolve();
  await Promise.all([
    showTable(null),
    chartTask.catch(async (e) => {
      if (e.name === "AbortError" || !isCurrent()) return;
      await renderTemplate(main.querySelector("#obs-chart"), "error-inline", { message: e.message });
    }),
  ]);
}
