// Who is signed in and what they may do: the profile, their role in each organization
// (currentUserRole; superusers are `super_user` everywhere) and the permission checks the pages
// use to hide controls, from the served ROLE_PERMISSIONS (the server enforces them regardless).
import * as api from "./api.js";
import { constants } from "./settings.js";

let profile = null;
let roles = new Map();
let organizations = [];

/** Loads the profile and memberships of the signed-in user (again after creating an organization). */
export async function load() {
  const [me, mine] = await Promise.all([api.get("/api/v1/users/profile"), api.get("/api/v1/users/organizations")]);
  profile = me;
  organizations = mine;
  roles = new Map(mine.map((o) => [o.id, o.currentUserRole]));
}

export const user = () => profile;
export const isSuperuser = () => Boolean(profile?.isSuperuser);
/** A patient signed in as themself (their own pages: studies, data, access log). */
export const isPatient = () => Boolean(profile?.patient) && profile?.userType === "patient";
/** The signed-in patient's id, or null. */
export const patientId = () => (isPatient() ? profile.patient.id : null);

/** The caller's role in an organization: super_user, manager, member, viewer or null. */
export function roleIn(orgId) {
  if (isSuperuser()) return "super_user";
  return roles.get(Number(orgId)) ?? null;
}

const permissionsOf = (role) => (role ? (constants.ROLE_PERMISSIONS[role] ?? []) : []);

/** Whether the caller's role in `orgId` grants `permission` (e.g. "study.manage_for_organization"). */
export const can = (permission, orgId) => permissionsOf(roleIn(orgId)).includes(permission);

/** Whether the caller holds `permission` without an organization (superuser-only permissions). */
export const canGlobally = (permission) => isSuperuser() && permissionsOf("super_user").includes(permission);

/** The organizations the caller belongs to (all organizations for a superuser), by name. */
export async function myOrganizations() {
  const list = isSuperuser()
    ? (await api.all("/api/v1/organizations")).filter((o) => o.id !== constants.ORGANIZATION_TOP_LEVEL_PART_OF_ID)
    : organizations;
  return [...list].sort((a, b) => a.name.localeCompare(b.name));
}

/** The caller's organizations in which they hold `permission`. */
export async function organizationsWhere(permission) {
  return (await myOrganizations()).filter((o) => can(permission, o.id));
}
