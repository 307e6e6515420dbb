// Patients page: the caller's patients (filter by organization and study), adding one, and a
// patient's details: edit, organizations, studies with the consent state of every scope,
// enrolling in a study, and invitation links for the study apps (copy button, expiry).
import * as api from "../api.js";
import * as session from "../session.js";
import { studiesWithStates, patientConsents } from "../consents.js";
import { expiryOf, issue } from "../invitations.js";
import { loadPage } from "../paging.js";
import { navigate, reload } from "../router.js";
import { render as renderTemplate } from "../templates.js";
import { bind, confirmDialog, copyText, toast } from "../ui.js";

export const title = "Patients";

const MANAGE = "patient.manage_for_organization";
const LISTS = ["identifierSystem", "identifierValue"];

export function render(main, ctx) {
  if (ctx.params.id) return detail(main, ctx, Number(ctx.params.id));
  if (ctx.url.pathname.endsWith("/new")) return create(main, ctx);
  return list(main, ctx);
}

async function list(main, { url, query, isCurrent }) {
  const organizationId = query.get("organization") || "";
  const studyId = query.get("study") || "";
  const [orgs, studies, page, manageable] = await Promise.all([
    session.myOrganizations(),
    api.all("/api/v1/studies"),
    loadPage("/api/v1/patients", { organizationId, studyId }, url, "Patient pages"),
    session.organizationsWhere(MANAGE),
  ]);
  if (!isCurrent()) return;
  await renderTemplate(main, "patients-list", {
    orgs: orgs.map((o) => ({ ...o, selected: String(o.id) === organizationId })),
    studies: studies.map((s) => ({ ...s, selected: String(s.id) === studyId })),
    patients: page.items,
    pager: page.pager,
    canCreate: manageable.length > 0,
    organizationId,
  });
}

/** The identifier rows of a form as `[{system, value}]`; a half-filled row is an error. */
function identifiersOf(v) {
  const rows = v.identifierSystem.map((system, i) => ({
    system: system.trim(),
    value: (v.identifierValue[i] || "").trim(),
  }));
  if (rows.some((r) => Boolean(r.system) !== Boolean(r.value))) {
    throw new Error("Each identifier needs both a system and a value (or leave both empty).");
  }
  return rows.filter((r) => r.system);
}

/** Appends an empty identifier row (ids kept unique for the labels). */
function addIdentifierRow(button) {
  const rows = button.closest("fieldset").querySelector("[data-identifier-rows]");
  const row = rows.lastElementChild.cloneNode(true);
  const n = rows.children.length;
  for (const input of row.querySelectorAll("input")) {
    input.value = "";
    input.id = input.id.replace(/-\d+$/, `-${n}`);
  }
  for (const label of row.querySelectorAll("label")) label.htmlFor = label.htmlFor.replace(/-\d+$/, `-${n}`);
  rows.append(row);
  row.querySelector("input").focus();
}

const today = () => new Date().toISOString().slice(0, 10);

async function create(main, { query, signal, isCurrent }) {
  const orgs = await session.organizationsWhere(MANAGE);
  const preselected = query.get("organization");
  if (!isCurrent()) return;
  await renderTemplate(main, "patient-new", {
    orgs: orgs.map((o) => ({ ...o, selected: String(o.id) === preselected })),
    identifiers: [{ system: "", value: "" }],
    today: today(),
  });
  bind(main, signal, {
    lists: LISTS,
    click: { "add-identifier": addIdentifierRow },
    submit: {
      "create-patient": async (v) => {
        let patient;
        try {
          patient = await api.post("/api/v1/patients", {
            organizationId: Number(v.organization),
            telecomEmail: v.email,
            nameGiven: v.nameGiven,
            nameFamily: v.nameFamily,
            birthDate: v.birthDate,
            telecomPhone: v.telecomPhone || null,
            identifiers: identifiersOf(v),
          });
        } catch (e) {
          // A patient with this email exists: offer to add them (they then decide what to share).
          if (e.status === 400 && /look them up and add them/.test(e.message)) {
            await offerExisting(main, v.email, Number(v.organization), signal);
            return;
          }
          throw e;
        }
        toast(`Added ${patient.nameGiven} ${patient.nameFamily}.`);
        navigate(`/patients/${patient.id}`);
      },
    },
  });
}

/**
 * The lookup-and-add flow: the existing patient is added to the organization and enrolled in one
 * of its studies; the organization sees them once they consent there (a practitioner cannot
 * consent for them).
 */
async function offerExisting(main, email, organizationId, signal) {
  const [found, studies] = await Promise.all([
    api.get("/api/v1/patients/global_lookup", { email }),
    api.all("/api/v1/studies", { organizationId }),
  ]);
  const patientId = found[0]?.id;
  const panel = main.querySelector("[data-existing]");
  await renderTemplate(panel, "patient-existing", { email, patientId, studies, organizationId });
  panel.hidden = false;
  panel.querySelector("h2")?.focus();
  bind(panel, signal, {
    submit: {
      "add-existing": async (v) => {
        await api.patch(`/api/v1/patients/${patientId}/global_add_organization`, undefined, { organizationId });
        if (v.study) await api.post(`/api/v1/studies/${v.study}/patients`, { patientIds: [patientId] });
        toast("Added. The patient is asked in their own app or pages; you see them once they consent.");
        navigate(v.study ? `/studies/${v.study}` : "/patients");
      },
    },
  });
}

async function detail(main, { signal, isCurrent }, id) {
  const [patient, consents, apps] = await Promise.all([
    api.get(`/api/v1/patients/${id}`),
    patientConsents(id),
    api.get(`/api/v1/patients/${id}/consolidated_clients`),
  ]);
  const manageOrgs = patient.organizations.filter((o) => session.can(MANAGE, o.id));
  const enrolled = studiesWithStates(consents);
  const enrolledIds = new Set(enrolled.map((s) => s.id));
  const studyOrgs = patient.organizations.filter((o) => session.can("study.manage_for_organization", o.id));
  const openStudies = (await Promise.all(studyOrgs.map((o) => api.all("/api/v1/studies", { organizationId: o.id }))))
    .flat()
    .filter((s) => !enrolledIds.has(s.id));
  const generated = {};
  const canManage = manageOrgs.length > 0;

  const draw = () =>
    renderTemplate(main, "patient-detail", {
      patient,
      identifiers: [...patient.identifiers, { system: "", value: "" }],
      organizations: patient.organizations.map((o) => ({
        ...o,
        canRemove: session.can(MANAGE, o.id),
        last: patient.organizations.length === 1,
      })),
      studies: enrolled,
      openStudies,
      apps: apps.map((a) => ({
        ...a,
        generated: generated[a.id],
        invitations: a.patientInvitations.map((inv) => ({
          ...inv,
          expires: inv.status === "issued" ? expiryOf(inv) : null,
        })),
      })),
      canManage,
      canEnroll: studyOrgs.length > 0,
      today: today(),
    });
  if (!isCurrent()) return;
  await draw();
  bind(main, signal, {
    lists: LISTS,
    click: {
      "add-identifier": addIdentifierRow,
      invite: async (el) => {
        const clientId = Number(el.dataset.clientId);
        generated[clientId] = await issue(id, clientId);
        await draw();
        main.querySelector(`#invitation-link-${clientId}`)?.focus();
        toast("Generated a new invitation link.");
      },
      copy: async (el) => {
        const input = main.querySelector(`#${el.dataset.target}`);
        await copyText(input.value, input);
      },
      "remove-org": async (el) => {
        const last = patient.organizations.length === 1;
        const warning = last
          ? " This is their last organization: the patient and all their data will be deleted."
          : " Their enrolments and consents for its studies are removed.";
        const action = last ? "Delete the patient and their data" : "Remove";
        if (!(await confirmDialog(`Remove the patient from ${el.dataset.name}?${warning}`, action))) return;
        await api.del(`/api/v1/patients/${id}`, undefined, { organizationId: el.dataset.orgId });
        toast(`Removed the patient from ${el.dataset.name}.`);
        if (last) navigate("/patients");
        else reload();
      },
    },
    submit: {
      "edit-patient": async (v) => {
        await api.patch(
          `/api/v1/patients/${id}`,
          {
            nameGiven: v.nameGiven,
            nameFamily: v.nameFamily,
            birthDate: v.birthDate,
            telecomPhone: v.telecomPhone || null,
            identifiers: identifiersOf(v),
          },
          { organizationId: manageOrgs[0].id },
        );
        toast("Saved the patient.");
        reload();
      },
      enroll: async (v) => {
        await api.post(`/api/v1/studies/${v.study}/patients`, { patientIds: [id] });
        toast("Enrolled the patient.");
        reload();
      },
    },
  });
}
