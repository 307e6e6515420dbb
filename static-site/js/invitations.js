// Patient invitation links: issuing one for a patient and a client app, and when it expires
// (the `expires` the server sends, else the issue time plus CONSTANTS.INVITATION_EXPIRATION_DAYS,
// which defaults to the server's default of 7 days).
import * as api from "./api.js";
import { constants } from "./settings.js";

const DAY_MS = 24 * 3600 * 1000;

/** When an invitation stops being redeemable. */
export function expiryOf(invitation) {
  if (invitation.expires) return invitation.expires;
  const days = constants.INVITATION_EXPIRATION_DAYS ?? 7;
  return new Date(Date.parse(invitation.lastUpdated) + days * DAY_MS).toISOString();
}

/** Issues a new invitation link (earlier ones for the same app are superseded). */
export async function issue(patientId, clientId) {
  const invitation = await api.post("/api/v1/invitation", { patient_id: patientId, client_id: clientId });
  return { link: invitation.invitationLink, expires: expiryOf(invitation), status: invitation.status };
}
