// The audit trail, for managers (the records of their organizations' patients, each as far as it
// concerns what they may see) and superusers (every record): AuditEvent search by patient, by
// agent (a user id), by date and by outcome, newest first, a page at a time.
import * as api from "../api.js";
import { render as renderTemplate } from "../templates.js";
import { bind } from "../ui.js";
import { navigate } from "../router.js";

export const title = "Audit trail";

const OUTCOMES = [
  ["", "Any outcome"],
  ["0", "Allowed"],
  ["4", "Refused"],
  ["8", "Failed"],
];

const rowOf = (e) => ({
  id: e.id,
  recorded: e.recorded,
  action: e.code?.coding?.[0]?.code,
  request: e.code?.text,
  who: e.agent?.[0]?.who?.identifier?.value ? `user ${e.agent[0].who.identifier.value}` : (e.agent?.[0]?.who?.display ?? ""),
  role: (e.agent?.[0]?.role ?? []).map((r) => r.text.split(",").join(", ")).join(", "),
  patients: (e.entity ?? []).map((en) => en.what?.reference).filter((r) => r?.startsWith("Patient/")),
  outcome: e.outcome?.code?.code,
  detail: e.outcome?.detail?.[0]?.text,
});

export async function render(main, { query, signal, isCurrent }) {
  const f = Object.fromEntries(["patient", "agent", "from", "to", "outcome", "cursor"].map((k) => [k, query.get(k) || ""]));
  let bundle = null;
  let error = null;
  if (f.patient || f.agent || f.from || f.to || f.outcome) {
    try {
      bundle = await api.get("/FHIR/R5/AuditEvent", {
        patient: f.patient,
        agent: f.agent,
        date: [f.from && `ge${f.from}`, f.to && `le${f.to}`],
        outcome: f.outcome,
        _count: 50,
        _cursor: f.cursor,
      });
    } catch (e) {
      error = e.message;
    }
  }
  if (!isCurrent()) return;
  const next = bundle ? api.nextLink(bundle) : null;
  await renderTemplate(main, "audit", {
    f,
    outcomes: OUTCOMES.map(([value, label]) => ({ value, label, selected: value === f.outcome })),
    searched: Boolean(bundle),
    rows: (bundle?.entry ?? []).map((e) => rowOf(e.resource)),
    error,
    nextCursor: next ? new URL(next).searchParams.get("_cursor") : null,
  });
  bind(main, signal, {
    submit: {
      "audit-search": async (v) => {
        const q = new URLSearchParams(Object.entries(v).filter(([, x]) => x));
        navigate(`/audit?${q}`);
      },
    },
    click: {
      more: async (el) => {
        const q = new URLSearchParams(window.location.search);
        q.set("cursor", el.dataset.cursor);
        navigate(`/audit?${q}`);
      },
    },
  });
}
