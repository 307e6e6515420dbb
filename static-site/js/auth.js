// Login and logout with oidc-client-ts (authorization code + PKCE) against the issuer named by
// the served settings (OIDCSettings from /common/server-settings.js): the built-in issuer
// locally, Cognito in the cloud. The user (tokens) lives in sessionStorage.
import { UserManager, WebStorageStateStore } from "/vendor/oidc-client-ts@3.5.0/oidc-client-ts.js";
import { oidcSettings } from "./settings.js";

let userManager = null;
const manager = () =>
  (userManager ??= new UserManager({
    response_type: "code",
    scope: "openid email",
    post_logout_redirect_uri: `${window.location.origin}/`,
    userStore: new WebStorageStateStore({ store: window.sessionStorage }),
    ...oidcSettings,
  }));

/** The path the issuer sends the browser back to (`/auth/callback`). */
export const callbackPath = () => new URL(oidcSettings.redirect_uri).pathname;

/** The signed-in user with a usable access token, or null. */
export async function currentUser() {
  const user = await manager().getUser();
  return user && !user.expired ? user : null;
}

/**
 * The bearer token for API calls: renewed with the refresh token shortly before it expires (or
 * after), or null when signed out or when the renewal fails.
 */
export async function accessToken() {
  let user = await manager().getUser();
  if (user?.refresh_token && (user.expired || (user.expires_in ?? 0) < 60)) {
    try {
      user = await manager().signinSilent();
    } catch {
      await manager().removeUser();
      user = null;
    }
  }
  return user && !user.expired ? user.access_token : null;
}

/** Sends the browser to the issuer's login; comes back to `returnTo` after the callback. */
export async function login(returnTo = window.location.pathname + window.location.search) {
  await manager().signinRedirect({ state: { returnTo } });
}

/** Completes the login on the callback page; returns the path to go back to. */
export async function completeLogin() {
  const user = await manager().signinRedirectCallback();
  const returnTo = user.state?.returnTo;
  return typeof returnTo === "string" && returnTo.startsWith("/") && !returnTo.startsWith("//") ? returnTo : "/";
}

/**
 * Forgets the tokens and ends the issuer session: through its end-session endpoint when it has
 * one (metadata or `metadataSeed` in the settings), otherwise through the local issuer's
 * `/accounts/logout/` (a POST), which ends its login session.
 */
export async function logout() {
  const metadata = await manager()
    .metadataService.getMetadata()
    .catch(() => ({}));
  if (metadata.end_session_endpoint) {
    // Cognito's /logout reads `logout_uri`; other issuers read post_logout_redirect_uri.
    await manager().signoutRedirect({ extraQueryParams: { logout_uri: manager().settings.post_logout_redirect_uri } });
    return;
  }
  await manager().removeUser();
  // The local issuer ends its session on a POST (a GET changes nothing).
  const form = document.createElement("form");
  form.method = "post";
  form.action = "/accounts/logout/";
  document.body.append(form);
  form.submit();
}
