// Organizations page: the tree of every organization, and for the selected one its details,
// sub-organizations (create), members and their roles (add, change, remove) and studies.
import * as api from "../api.js";
import * as session from "../session.js";
import { constants } from "../settings.js";
import { navigate, reload } from "../router.js";
import { render as renderTemplate } from "../templates.js";
import { bind, confirmDialog, toast } from "../ui.js";

export const title = "Organizations";

const MANAGE = "organization.manage_for_practitioners";
const TOP = () => constants.ORGANIZATION_TOP_LEVEL_PART_OF_ID;

function findNode(nodes, id) {
  for (const n of nodes) {
    if (n.id === id) return n;
    const found = findNode(n.children || [], id);
    if (found) return found;
  }
  return null;
}

function decorate(nodes, selectedId) {
  return nodes.map((n) => ({
    ...n,
    selected: n.id === selectedId,
    role: session.roleIn(n.id),
    // Only what the caller may open is a link (an organization they hold no role in is context).
    openable: Boolean(session.roleIn(n.id)),
    children: decorate(n.children || [], selectedId),
  }));
}

const typeOptions = (selected) =>
  Object.entries(constants.ORGANIZATION_TYPES)
    .filter(([code]) => code !== "root")
    .map(([code, label]) => ({ code, label, selected: code === selected }));

export async function render(main, { params, signal, isCurrent }) {
  const [top, mine] = await Promise.all([
    api.all("/api/v1/organizations", { partOf: TOP() }),
    session.myOrganizations(),
  ]);
  const trees = await Promise.all(top.map((o) => api.get(`/api/v1/organizations/${o.id}/tree`)));
  const selectedId = params.id ? Number(params.id) : (mine[0]?.id ?? top[0]?.id);
  const canCreateTop = session.canGlobally("organization.create_top_level");
  if (selectedId === undefined) {
    if (!isCurrent()) return;
    await renderTemplate(main, "organizations", { empty: true, trees: [], canCreateTop, types: typeOptions("") });
    bindPage(main, signal, null);
    return;
  }
  // An organization the caller holds no role in is shown read-only: its name and place.
  const inside = Boolean(session.roleIn(selectedId));
  const [org, members, studies] = await Promise.all([
    api.get(`/api/v1/organizations/${selectedId}`),
    inside ? api.get(`/api/v1/organizations/${selectedId}/users`) : [],
    inside ? api.get(`/api/v1/organizations/${selectedId}/studies`) : [],
  ]);
  const node = findNode(trees, org.id);
  const parent = org.partOf && org.partOf !== TOP() ? findNode(trees, org.partOf) : null;
  const canManage = session.can(MANAGE, org.id);
  const canEdit = org.partOf === TOP() ? canManage : session.can(MANAGE, org.partOf);
  const me = session.user();
  const data = {
    trees: decorate(trees, org.id),
    org,
    role: session.roleIn(org.id),
    parent,
    children: node?.children ?? [],
    members: members.map((m) => ({
      ...m,
      self: m.id === me.id,
      roles: ["manager", "member", "viewer"].map((r) => ({ value: r, selected: r === m.role })),
    })),
    studies,
    types: typeOptions(""),
    editTypes: typeOptions(org.type),
    canManage,
    canEdit,
    // The server refuses to delete an organization that still holds records: no button then.
    canDelete: canEdit && !node?.children?.length && !studies.length,
    inside,
    canCreateTop,
    canCreateStudy: session.can("study.manage_for_organization", org.id),
  };
  if (!isCurrent()) return;
  await renderTemplate(main, "organizations", data);
  bindPage(main, signal, org);
}

function bindPage(main, signal, org) {
  bind(main, signal, {
    submit: {
      "create-top": async (v) => {
        const created = await api.post("/api/v1/organizations", { name: v.name, type: v.type, partOf: TOP() });
        await session.load();
        toast(`Created ${created.name}.`);
        navigate(`/organizations/${created.id}`);
      },
      "create-sub": async (v) => {
        const created = await api.post("/api/v1/organizations", { name: v.name, type: v.type, partOf: org.id });
        await session.load();
        toast(`Created ${created.name} under ${org.name}.`);
        navigate(`/organizations/${created.id}`);
      },
      "edit-org": async (v) => {
        await api.patch(`/api/v1/organizations/${org.id}`, { name: v.name, type: v.type });
        toast("Saved the organization.");
        reload();
      },
      "add-member": async (v) => {
        const user = await api.get("/api/v1/users/search_by_email", { email: v.email });
        await api.post(`/api/v1/organizations/${org.id}/user`, {
          jheUserId: user.id,
          organizationPartitionerRole: v.role,
        });
        toast(`Added ${user.email} as ${v.role}.`);
        reload();
      },
      "member-role": async (v) => {
        await api.post(`/api/v1/organizations/${org.id}/user`, {
          jheUserId: Number(v.userId),
          organizationPartitionerRole: v.role,
        });
        toast(`Changed the role to ${v.role}.`);
        reload();
      },
    },
    click: {
      "delete-org": async () => {
        if (!(await confirmDialog(`Delete the organization ${org.name}?`, "Delete"))) return;
        await api.del(`/api/v1/organizations/${org.id}`);
        await session.load();
        toast(`Deleted ${org.name}.`);
        navigate(org.partOf && org.partOf !== TOP() ? `/organizations/${org.partOf}` : "/organizations");
      },
      "remove-member": async (el) => {
        if (!(await confirmDialog(`Remove ${el.dataset.email} from ${org.name}?`, "Remove"))) return;
        await api.del(`/api/v1/organizations/${org.id}/remove_user`, { jheUserId: Number(el.dataset.userId) });
        toast(`Removed ${el.dataset.email}.`);
        reload();
      },
    },
  });
}
