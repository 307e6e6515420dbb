#!/usr/bin/env python3
"""The API contract and fuzzing run of the test command, against a running ``jhe serve``.

1. Schemathesis over every operation of the OpenAPI document at ``/api/schema/``, once as a
   manager, once as a patient and once as a superuser, with its checks for server errors, status
   codes documented, content types and response-schema conformance.
2. A seeded fuzz of the FHIR routes: uploads built from valid Observations and mutated (keys
   dropped, types changed, huge, control characters, deep nesting, wrong content types), searches
   with random and hostile parameters and cursors, and form searches. Every answer must be a
   4xx/2xx in the FHIR format; a 5xx or a dropped connection is a failure.

Ends with the line ``api fuzz: N passed, M failed`` (one per run and fuzz family). Reports go to
``--report-dir``. Usage (the test command does this on a fresh server):

    python tests/harness/api_fuzz.py --url http://127.0.0.1:8000 --seed 1 --max-examples 20
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import random
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlparse

import requests

PASSWORD = "Jhe1234!"
ADMIN_CLIENT = "jhe-admin-ui"
TIMEOUT = 60
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def login(url: str, email: str) -> str:
    """An access token through the real authorization-code + PKCE flow and login form."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    redirect = f"{url}/auth/callback"
    query = urlencode(
        {
            "response_type": "code",
            "client_id": ADMIN_CLIENT,
            "redirect_uri": redirect,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "scope": "openid email",
            "state": "x",
        }
    )
    browser = requests.Session()
    resp = browser.get(f"{url}/o/authorize/?{query}", allow_redirects=False, timeout=TIMEOUT)
    login_url = urljoin(url, resp.headers["Location"])
    page = browser.get(login_url, timeout=TIMEOUT).text
    fields = {k: v.replace("&amp;", "&") for k, v in re.findall(r'name="([^"]+)"[^>]*value="([^"]*)"', page)}
    fields.update(username=email, password=PASSWORD)
    resp = browser.post(urljoin(url, "/accounts/login/"), data=fields, allow_redirects=False, timeout=TIMEOUT)
    resp = browser.get(urljoin(url, resp.headers["Location"]), allow_redirects=False, timeout=TIMEOUT)
    code = parse_qs(urlparse(resp.headers["Location"]).query)["code"][0]
    token = requests.post(
        f"{url}/o/token/",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect,
            "client_id": ADMIN_CLIENT,
            "code_verifier": verifier,
        },
        timeout=TIMEOUT,
    )
    token.raise_for_status()
    return token.json()["access_token"]


def patient_login(url: str, manager: str, patient_id: int) -> str:
    """A patient's token the way the phone app gets one: an invitation, redeemed."""
    auth = {"Authorization": f"Bearer {manager}"}
    clients = requests.get(f"{url}/api/v1/clients", headers=auth, timeout=TIMEOUT).json()["results"]
    inv = requests.post(
        f"{url}/api/v1/invitation",
        json={"patientId": patient_id, "clientId": clients[0]["id"]},
        headers=auth,
        timeout=TIMEOUT,
    )
    inv.raise_for_status()
    invitation = inv.json()["token"]
    grant = requests.post(f"{url}/api/v1/invitation/{invitation}", timeout=TIMEOUT).json()["grant"]
    verifier = base64.urlsafe_b64encode(invitation.encode()).rstrip(b"=").decode()
    token = requests.post(f"{url}/o/token/", data=dict(grant, code_verifier=verifier), timeout=TIMEOUT)
    token.raise_for_status()
    return token.json()["access_token"]


def schemathesis(url: str, who: str, token: str, args: argparse.Namespace, report_dir: Path) -> tuple[int, int, dict]:
    """One Schemathesis run; returns (operations passed, operations failed, counts)."""
    exe = Path(sys.executable).with_name("schemathesis")
    ndjson = report_dir / f"schemathesis-{who}.ndjson"
    cmd = [
        str(exe), "run", f"{url}/api/schema/",
        "--header", f"Authorization: Bearer {token}",
        "--checks", CHECKS,
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", str(args.max_examples),
        "--seed", str(args.seed),
        # One worker: Hypothesis describing strategies from two threads at once fails now and then.
        "--workers", "1",
        "--request-timeout", "60",
        "--suppress-health-check", "all",
        "--report", "ndjson,junit",
        "--report-ndjson-path", str(ndjson),
        "--report-junit-path", str(report_dir / f"schemathesis-{who}.xml"),
        "--output-truncate", "true",
        # Deleting the caller's own account would only test 401s from then on.
        "--exclude-operation-id", "delete_api_v1_practitioners__id_",
        "--exclude-operation-id", "delete_api_v1_patients__id_",
    ]
    if args.max_time:
        cmd += ["--max-time", str(args.max_time)]
    log = report_dir / f"schemathesis-{who}.log"
    with open(log, "w") as out:
        code = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ, NO_COLOR="1")).returncode
    text = log.read_text()
    summary = {
        "operations": _number(r"Tested: (\d+)", text),
        "cases": _number(r"(\d+) generated", text),
        "failures": _number(r"(\d+) unique failures?", text),
        "server_errors": text.count("Server error"),
    }
    failed_ops = len(set(re.findall(r"^_+ ([A-Z]+ \S+) _+$", text, re.M)))
    tested = summary["operations"]
    if code != 0 and failed_ops == 0:
        failed_ops = 1  # the run itself failed (see the log)
    print(f"  schemathesis as {who}: {tested} operations, {summary['cases']} cases, "
          f"{summary['failures']} failures ({log.name})")
    if code != 0:
        print("\n".join(text.splitlines()[-60:]))
    return tested - failed_ops, failed_ops, summary


def _number(pattern: str, text: str) -> int:
    found = re.findall(pattern, text)
    return int(found[-1]) if found else 0


# ---- The FHIR fuzz -------------------------------------------------------------------------

HR = {"system": "https://w3id.org/openmhealth", "code": "omh:heart-rate:2.0"}


def observation(rng: random.Random, patient: int, device: int) -> dict[str, Any]:
    at = f"2025-0{rng.randint(1, 9)}-{rng.randint(10, 28)}T{rng.randint(10, 23)}:{rng.randint(10, 59)}:00Z"
    dp = {
        "header": {
            "uuid": str(_uuid(rng)),
            "schema_id": {"namespace": "omh", "name": "heart-rate", "version": "2.0"},
            "source_creation_date_time": at,
            "modality": "sensed",
        },
        "body": {"heart_rate": {"value": rng.randint(40, 180), "unit": "beats/min"}, "effective_time_frame": {"date_time": at}},
    }
    return {
        "resourceType": "Observation",
        "status": "final",
        "subject": {"reference": f"Patient/{patient}"},
        "device": {"reference": f"Device/{device}"},
        "code": {"coding": [HR]},
        "identifier": [{"system": "https://example.org/fuzz", "value": str(_uuid(rng))}],
        "valueAttachment": {
            "contentType": "application/json",
            "data": base64.b64encode(json.dumps(dp).encode()).decode(),
        },
    }


def _uuid(rng: random.Random) -> str:
    h = "%032x" % rng.getrandbits(128)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


NASTY = [None, True, 0, -1, 2**63, 1e308, "", " ", "\u0000", "a\u0000b", "\ud7ff" * 10, "x" * 70000, [], {}, [[[[[]]]]],
         {"$ref": "#"}, "Patient/../../etc", "Patient/-1", "Patient/99999999999999999999", "2025-13-45T99:99:99Z"]


def mutate(rng: random.Random, value: Any, depth: int = 0) -> Any:
    """A random change somewhere in a JSON value."""
    if isinstance(value, dict) and value and depth < 8:
        key = rng.choice(list(value))
        out = dict(value)
        roll = rng.random()
        if roll < 0.2:
            del out[key]
        elif roll < 0.3:
            out["x" * rng.randint(1, 3)] = rng.choice(NASTY)
        elif roll < 0.55:
            out[key] = rng.choice(NASTY)
        else:
            out[key] = mutate(rng, value[key], depth + 1)
        return out
    if isinstance(value, list) and value and depth < 8:
        out = list(value)
        i = rng.randrange(len(out))
        roll = rng.random()
        if roll < 0.2:
            out.pop(i)
        elif roll < 0.35:
            out.append(rng.choice(out))
        else:
            out[i] = mutate(rng, out[i], depth + 1)
        return out
    if isinstance(value, str) and value and rng.random() < 0.5:
        # Damage the base64 or the text.
        i = rng.randrange(len(value))
        return value[:i] + rng.choice(["", "=", "\u0000", "%", "é", "\n"]) + value[i + 1:]
    return rng.choice(NASTY)


def deep(n: int) -> bytes:
    """JSON nested `n` arrays deep."""
    return b"[" * n + b"1" + b"]" * n


def fhir_fuzz(url: str, tokens: dict[str, str], rng: random.Random, cases: int, report_dir: Path) -> tuple[int, int]:
    passed = failed = 0
    failures: list[str] = []
    session = requests.Session()

    def send(what: str, method: str, path: str, token: str | None, **kw: Any) -> None:
        nonlocal passed, failed
        headers = dict(kw.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            resp = session.request(method, url + path, headers=headers, timeout=TIMEOUT, **kw)
        except requests.RequestException as exc:
            failed += 1
            failures.append(f"{what}: {method} {path[:300]}: no answer ({exc})")
            return
        problem = None
        if resp.status_code >= 500:
            problem = f"server error {resp.status_code}"
        elif "json" not in resp.headers.get("Content-Type", ""):
            problem = f"not JSON: {resp.headers.get('Content-Type')}"
        else:
            try:
                body = resp.json()
            except ValueError:
                problem = "a body that is not JSON"
            else:
                kind = body.get("resourceType") if isinstance(body, dict) else None
                if resp.status_code >= 400 and kind != "OperationOutcome":
                    problem = f"{resp.status_code} without an OperationOutcome"
                elif resp.status_code < 300 and kind not in ("Bundle", "Observation", "OperationOutcome", "Patient",
                                                             "AuditEvent", "CapabilityStatement"):
                    problem = f"{resp.status_code} with resourceType {kind!r}"
        if problem:
            failed += 1
            failures.append(f"{what}: {method} {path[:300]} -> {problem}: {resp.text[:300]!r}")
        else:
            passed += 1

    patient, manager = tokens["patient"], tokens["manager"]
    codes = ["omh:heart-rate:2.0", "https://w3id.org/openmhealth|omh:blood-glucose:4.0", "|", "x|", "|y", "omh:*", ""]
    params = ["patient", "subject", "code", "date", "_id", "_count", "_cursor", "_sort", "_summary", "_page",
              "patient.organization", "patient._has:Group:member:_id", "agent", "action", "outcome", "bogus", ""]
    values = ["40001", "Patient/40001", "-1", "0", "1", "1000", "1001", "99999999999999999999", "abc", "ge2025-01-01",
              "lt2025-13-01", "eq2025", "gt", "2025-01-01T00:00:00Z,2025-02-01", "%00", "\u0000", "x" * 5000,
              "-_lastUpdated", "count", "true", "R", "D", "0", "8", "Zm9v", "eyJ9", "_cursor=" + "A" * 400]
    for i in range(cases):
        roll = rng.random()
        who = patient if rng.random() < 0.8 else manager
        if roll < 0.35:
            obs = observation(rng, 40001, 70001)
            for _ in range(rng.randint(1, 3)):
                obs = mutate(rng, obs)
            send("upload", "POST", "/FHIR/R5/Observation", who, json=obs,
                 headers={"Content-Type": "application/fhir+json"})
        elif roll < 0.55:
            entries = [observation(rng, 40001, 70001) for _ in range(rng.randint(0, 4))]
            bundle: Any = {"resourceType": "Bundle", "type": "batch", "entry": [
                {"resource": e, "request": {"method": "POST", "url": "Observation"}} for e in entries]}
            for _ in range(rng.randint(1, 3)):
                bundle = mutate(rng, bundle)
            send("batch", "POST", rng.choice(["/FHIR/R5/", "/FHIR/R5"]), who, json=bundle,
                 headers={"Content-Type": "application/fhir+json"})
        elif roll < 0.62:
            body = rng.choice([b"", b"{", b"null", b"[]", b"\xff\xfe", deep(rng.randint(100, 3000)),
                               b'{"resourceType":"Observation"' + b" " * 1000, "é".encode("latin-1")])
            ctype = rng.choice(["application/fhir+json", "application/json", "text/plain", "application/xml", "", "multipart/form-data"])
            send("raw upload", "POST", rng.choice(["/FHIR/R5/Observation", "/FHIR/R5/"]), who, data=body,
                 headers={"Content-Type": ctype} if ctype else {})
        elif roll < 0.9:
            rtype = rng.choice(["Observation", "Patient", "AuditEvent", "Observation", "Encounter", "observation", "..", "%2e%2e"])
            query = [(rng.choice(params), rng.choice(values if rng.random() < 0.8 else codes)) for _ in range(rng.randint(0, 4))]
            token = who if rng.random() < 0.95 else None
            send("search", "GET", f"/FHIR/R5/{rtype}?{urlencode(query)}", token)
        elif roll < 0.96:
            rtype = rng.choice(["Observation", "Patient", "AuditEvent"])
            form = {rng.choice(params): rng.choice(values) for _ in range(rng.randint(0, 3))}
            send("form search", "POST", f"/FHIR/R5/{rtype}/_search", who, data=form)
        else:
            rtype = rng.choice(["Observation", "Patient", "AuditEvent", "Group"])
            rid = rng.choice(["1", "40001", "-1", "abc", "0" * 300, "%00", "99999999999999999999", "1700000000000abcdefgh"])
            send("read", rng.choice(["GET", "GET", "PUT", "DELETE", "PATCH"]), f"/FHIR/R5/{rtype}/{rid}", who)
    (report_dir / "fhir-fuzz-failures.txt").write_text("\n".join(failures) + ("\n" if failures else ""))
    print(f"  FHIR fuzz: {passed + failed} cases, {failed} failures (fhir-fuzz-failures.txt)")
    for f in failures[:20]:
        print("    " + f)
    return passed, failed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-examples", type=int, default=20, help="Schemathesis cases per operation and phase")
    ap.add_argument("--max-time", type=int, default=0, help="Schemathesis time budget per run (seconds; 0: none)")
    ap.add_argument("--fhir-cases", type=int, default=3000)
    ap.add_argument("--report-dir", default="test-output/api-fuzz")
    args = ap.parse_args()
    url = args.url.rstrip("/")
    report_dir = Path(args.report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    manager = login(url, "manager_mary@example.com")
    tokens = {
        "manager": manager,
        "patient": patient_login(url, manager, 40001),
        "superuser": login(url, "admin@example.com"),
    }
    passed = failed = 0
    totals = {"operations": 0, "cases": 0, "failures": 0}
    for who in ("manager", "patient", "superuser"):
        p, f, summary = schemathesis(url, who, tokens[who], args, report_dir)
        passed, failed = passed + p, failed + f
        for k in totals:
            totals[k] += summary[k]
    p, f = fhir_fuzz(url, tokens, random.Random(args.seed), args.fhir_cases, report_dir)
    passed, failed = passed + p, failed + f
    # The server is still there and well after all of it.
    health = requests.get(f"{url}/health", timeout=TIMEOUT)
    if health.status_code == 200:
        passed += 1
    else:
        failed += 1
        print(f"  /health after the fuzz: {health.status_code}")
    print(f"  schemathesis totals: {totals['operations']} operation runs, {totals['cases']} cases, "
          f"{totals['failures']} failures; {time.monotonic() - started:.0f} s in all")
    print(f"api fuzz: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
