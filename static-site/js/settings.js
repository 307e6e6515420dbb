// The settings the server serves at /common/server-settings.js, a classic script that defines
// window.OIDCSettings (the login issuer) and the global constant CONSTANTS (organization and
// data-source types, ROLE_PERMISSIONS...), made available to the modules.
/* global CONSTANTS */
export const oidcSettings = window.OIDCSettings ?? null;
export const constants = typeof CONSTANTS === "undefined" ? null : CONSTANTS;
