// Test helpers that talk to a running JHE server over HTTP, the way a notebook or a patient's
// phone app would: a practitioner token through the real login form (authorization code + PKCE),
// admin-API and FHIR calls, and a patient token through the invitation flow.
import { createHash, randomBytes } from "node:crypto";

const b64url = (buf) => Buffer.from(buf).toString("base64url");

/** Cookies of a tiny per-flow cookie jar, sent back on the next request. */
function jar() {
  const cookies = new Map();
  return {
    header: () => [...cookies].map(([k, v]) => `${k}=${v}`).join("; "),
    take(resp) {
      for (const line of resp.headers.getSetCookie()) {
        const [kv] = line.split(";");
        const i = kv.indexOf("=");
        cookies.set(kv.slice(0, i).trim(), kv.slice(i + 1));
      }
    },
  };
}

/** An access token for a seeded practitioner, through /o/authorize and the login form. */
export async function practitionerToken(base, email, password, clientId = "jhe-admin-ui") {
  const cookies = jar();
  const verifier = b64url(randomBytes(32));
  const challenge = b64url(createHash("sha256").update(verifier).digest());
  const redirectUri = `${base}/auth/callback`;
  const authorize = `/o/authorize/?${new URLSearchParams({
    response_type: "code",
    client_id: clientId,
    redirect_uri: redirectUri,
    code_challenge: challenge,
    code_challenge_method: "S256",
    scope: "openid email",
    state: "test",
  })}`;
  const form = await fetch(`${base}/accounts/login/?${new URLSearchParams({ next: authorize })}`);
  cookies.take(form);
  const csrf = (await form.text()).match(/name="csrfmiddlewaretoken" value="([^"]+)"/)[1];
  const login = await fetch(`${base}/accounts/login/`, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded", cookie: cookies.header() },
    body: new URLSearchParams({ csrfmiddlewaretoken: csrf, next: authorize, username: email, password }),
  });
  if (login.status !== 303 && login.status !== 302) throw new Error(`login failed: ${login.status}`);
  cookies.take(login);
  const auth = await fetch(`${base}${login.headers.get("location")}`, {
    redirect: "manual",
    headers: { cookie: cookies.header() },
  });
  const code = new URL(auth.headers.get("location")).searchParams.get("code");
  if (!code) throw new Error(`no code: ${auth.headers.get("location")}`);
  return exchange(`${base}/o/token/`, {
    grant_type: "authorization_code",
    code,
    redirect_uri: redirectUri,
    client_id: clientId,
    code_verifier: verifier,
  });
}

async function exchange(tokenEndpoint, fields) {
  const resp = await fetch(tokenEndpoint, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(fields),
  });
  const body = await resp.json();
  if (!resp.ok) throw new Error(`token: ${resp.status} ${JSON.stringify(body)}`);
  return body.access_token;
}

/** One JSON call with a bearer token; throws with the status and body on a non-2xx answer. */
export async function call(base, token, method, path, body) {
  const resp = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await resp.text();
  if (!resp.ok) throw new Error(`${method} ${path}: ${resp.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** A patient's access token through an invitation: issue, redeem (no auth), exchange (PKCE). */
export async function patientToken(base, practitioner, patientId, clientPk) {
  const inv = await call(base, practitioner, "POST", "/api/v1/invitation", {
    patient_id: patientId,
    client_id: clientPk,
  });
  const redeemed = await fetch(`${base}/api/v1/invitation/${inv.token}`, { method: "POST" });
  if (!redeemed.ok) throw new Error(`redeem: ${redeemed.status} ${await redeemed.text()}`);
  const { grant, token_endpoint: tokenEndpoint } = await redeemed.json();
  return exchange(tokenEndpoint, { ...grant, code_verifier: b64url(Buffer.from(inv.token, "ascii")) });
}

/** A blood-glucose Open mHealth data point wrapped as an OMH FHIR Observation. */
export function glucoseObservation(patientId, deviceId, when, value) {
  const iso = when.toISOString().replace(/\.\d{3}Z$/, "Z");
  const point = {
    header: {
      uuid: crypto.randomUUID(),
      schema_id: { namespace: "omh", name: "blood-glucose", version: "4.0" },
      source_creation_date_time: iso,
      modality: "sensed",
    },
    body: { blood_glucose: { value, unit: "mg/dL" }, effective_time_frame: { date_time: iso } },
  };
  return {
    resourceType: "Observation",
    identifier: [{ system: "https://example.org/spa-e2e", value: point.header.uuid }],
    status: "final",
    code: { coding: [{ system: "https://w3id.org/openmhealth", code: "omh:blood-glucose:4.0" }] },
    subject: { reference: `Patient/${patientId}` },
    device: { reference: `Device/${deviceId}` },
    valueAttachment: {
      contentType: "application/json",
      data: Buffer.from(JSON.stringify(point)).toString("base64"),
    },
  };
}

/** Uploads observations as one batch Bundle; returns how many entries were created. */
export async function uploadBatch(base, token, observations) {
  const bundle = {
    resourceType: "Bundle",
    type: "batch",
    entry: observations.map((resource) => ({ resource, request: { method: "POST", url: "Observation" } })),
  };
  const resp = await call(base, token, "POST", "/FHIR/R5/", bundle);
  const failed = resp.entry.filter((e) => !e.response.status.startsWith("201"));
  if (failed.length) throw new Error(`upload: ${failed.length} entries failed: ${JSON.stringify(failed[0])}`);
  return resp.entry.length;
}
