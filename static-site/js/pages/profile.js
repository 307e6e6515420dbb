// The signed-in practitioner's profile: who they are, their role in each organization, and how to
// give a notebook access (a short-lived token to copy now, or a personal API key).
import { accessToken } from "../auth.js";
import * as session from "../session.js";
import { render as renderTemplate } from "../templates.js";
import { bind, copyText } from "../ui.js";

export const title = "Profile";

export async function render(main, { signal, isCurrent }) {
  const orgs = await session.myOrganizations();
  if (!isCurrent()) return;
  await renderTemplate(main, "profile", {
    me: session.user(),
    orgs: orgs.map((o) => ({ ...o, role: session.roleIn(o.id) })),
    origin: window.location.origin,
  });
  bind(main, signal, {
    click: {
      "copy-token": async (el) => {
        const token = await accessToken();
        await copyText(token ?? "", el);
      },
    },
  });
}
