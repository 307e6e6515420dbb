// Reading a patient's consents (GET /api/v1/patients/{id}/consents) as one state per study and
// requested scope: pending (no decision), consented or revoked, with the decision time.
import * as api from "./api.js";

const key = (code) => `${code.codingSystem}|${code.codingCode}`;

/** The consents of a patient: `{studyId: {scopeKey: {consented, consentedTime}}}` plus the raw answer. */
export async function patientConsents(patientId) {
  const answer = await api.get(`/api/v1/patients/${patientId}/consents`);
  const byStudy = {};
  for (const study of answer.studiesPendingConsent || []) {
    for (const c of study.pendingScopeConsents || []) {
      (byStudy[study.id] ??= {})[key(c.code)] = { consented: null, consentedTime: null };
    }
  }
  for (const study of answer.studies || []) {
    for (const c of study.scopeConsents || []) {
      (byStudy[study.id] ??= {})[key(c.code)] = { consented: c.consented, consentedTime: c.consentedTime };
    }
  }
  return { byStudy, answer };
}

/** The state of one requested scope of a study (pending when nothing is recorded). */
export const stateOf = (byStudy, studyId, code) =>
  byStudy[studyId]?.[key(code)] ?? { consented: null, consentedTime: null };

/** The studies a patient is enrolled in, each with its requested scopes and their states. */
export function studiesWithStates({ byStudy, answer }) {
  const studies = new Map();
  for (const s of [...(answer.studies || []), ...(answer.studiesPendingConsent || [])]) {
    const entry = studies.get(s.id) ?? { id: s.id, name: s.name, organization: s.organization, scopes: new Map() };
    for (const c of [...(s.scopeConsents || []), ...(s.pendingScopeConsents || [])]) {
      entry.scopes.set(key(c.code), { code: c.code, state: stateOf(byStudy, s.id, c.code) });
    }
    studies.set(s.id, entry);
  }
  return [...studies.values()].map((s) => ({ ...s, scopes: [...s.scopes.values()] }));
}
