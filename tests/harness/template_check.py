#!/usr/bin/env python3
"""Checks infra/template.yaml against the app's route table and the repository.

    python tests/harness/template_check.py [--jhe target/debug/jhe] [--routes-json FILE]
                                     [--template infra/template.yaml]

The route table comes from `jhe routes` (JSON: [{"group", "method", "path"}], axum `{param}`
syntax), or from --routes-json. Checks, each printed as a PASS or FAIL line:

- every function is a rust-cargolambda build of binary `jhe-<group>` for a known route group, one
  function per group, with the runtime, architecture, handler and code location SAM needs;
- every route of the table is an HttpApi event (method + path) of its group's function, and every
  HttpApi event is a route of the table. HTTP API route keys cannot end in "/", so a table path
  with a trailing slash is expected without it (POST /FHIR/R5/ and POST /FHIR/R5 share one route);
- every event uses payload format 2.0 on the template's AWS::Serverless::HttpApi;
- every function has its own log group with the LogRetentionDays retention;
- no IAM Allow statement names a "*" resource, and the read-only / no-data functions hold no write
  actions (apart from audit appends);
- CloudFront forwards every route's path to the API;
- every function has functions/<group>/Cargo.toml declaring package or [[bin]] `jhe-<group>`;
- every function has at least one event under events/<group>/, each a payload 2.0 event whose
  route key is one of that function's routes, listed in events/expected-status.json.

Ends with `template_check: N passed, M failed`; exits 1 if anything failed, 2 if it could not run.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    tomllib = None

ROOT = Path(__file__).resolve().parent.parent.parent

# What each group may write to the table (None: anything but audit deletes). Keys are DynamoDB
# leading-key patterns a PutItem/DeleteItem Allow must be conditioned on.
AUDIT_KEYS = {"AUDIT#*", "AUDITP#*"}
READ_ONLY_GROUPS = {"fhir-read"}
NO_DATA_GROUPS = {"discovery"}
WRITE_ACTIONS = {
    "dynamodb:PutItem",
    "dynamodb:DeleteItem",
    "dynamodb:UpdateItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
}


class Report:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, ok: bool, what: str, why: str = "") -> bool:
        if ok:
            self.passed += 1
            print(f"PASS {what}")
        else:
            self.failed += 1
            print(f"FAIL {what}" + (f": {why}" if why else ""))
        return ok


# ------------------------------------------------------------------------------------- loading


def load_template(path: Path) -> dict:
    """The template as plain data, short-form tags (!Ref, !Sub, ...) as their long forms."""
    try:
        from cfnlint.decode import decode  # the loader cfn-lint itself uses
    except ImportError:
        return _load_with_yaml(path)
    template, matches = decode(str(path))
    if matches or template is None:
        raise SystemExit(f"template_check: cannot parse {path}: {'; '.join(str(m) for m in matches)}")
    return json.loads(json.dumps(template, default=str))


def _load_with_yaml(path: Path) -> dict:
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def construct(tag: str):
        name = "Ref" if tag == "Ref" else f"Fn::{tag}"

        def f(loader, node):
            if isinstance(node, yaml.ScalarNode):
                value = loader.construct_scalar(node)
                if tag == "GetAtt":
                    value = value.split(".", 1)
            elif isinstance(node, yaml.SequenceNode):
                value = loader.construct_sequence(node, deep=True)
            else:
                value = loader.construct_mapping(node, deep=True)
            return {"Condition" if tag == "Condition" else name: value}

        return f

    for tag in ("Ref", "GetAtt", "Sub", "If", "Not", "Equals", "And", "Or", "Condition", "Join", "Select",
                "Split", "FindInMap", "ImportValue", "Base64", "Cidr", "GetAZs", "Transform"):
        Loader.add_constructor(f"!{tag}", construct(tag))
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=Loader)


def load_routes(args) -> list[dict]:
    if args.routes_json:
        text = Path(args.routes_json).read_text(encoding="utf-8")
    else:
        jhe = Path(args.jhe)
        if not jhe.is_absolute():
            jhe = ROOT / jhe
        if not jhe.exists():
            raise SystemExit(f"template_check: {jhe} not found (build it: cargo build -p jhe-local), or pass --routes-json")
        out = subprocess.run([str(jhe), "routes"], capture_output=True, text=True, timeout=60)
        if out.returncode != 0:
            raise SystemExit(f"template_check: `{jhe} routes` failed: {out.stderr.strip()}")
        text = out.stdout
    routes = json.loads(text)
    if not isinstance(routes, list) or not all({"group", "method", "path"} <= set(r) for r in routes):
        raise SystemExit("template_check: the route table is not a list of {group, method, path}")
    return routes


# ------------------------------------------------------------------------------------- helpers


def route_key_path(path: str) -> str:
    """The HTTP API route path for a table path: no trailing slash (API Gateway refuses one)."""
    return path.rstrip("/") or "/"


def path_regex(route_path: str) -> re.Pattern:
    """Matches request paths of a route (one segment per {param}; an optional trailing slash)."""
    parts = []
    for seg in route_path.strip("/").split("/"):
        parts.append("[^/]+" if re.fullmatch(r"\{[^/{}+]+\}", seg) else re.escape(seg))
    return re.compile("^/" + "/".join(parts) + "/?$")


def as_list(v) -> list:
    return v if isinstance(v, list) else [v]


def ref_name(v):
    if isinstance(v, dict) and set(v) == {"Ref"}:
        return v["Ref"]
    return None


def effective(fn: dict, globals_fn: dict, key: str):
    props = fn.get("Properties", {})
    return props[key] if key in props else globals_fn.get(key)


def statements(role: dict, role_lid: str | None = None, resources: dict | None = None) -> list[dict]:
    """The role's inline statements, and those of AWS::IAM::Policy resources attached to it."""
    out = []
    for pol in role.get("Properties", {}).get("Policies", []) or []:
        doc = pol.get("PolicyDocument", {})
        out.extend(as_list(doc.get("Statement", [])))
    for res in (resources or {}).values():
        if res.get("Type") != "AWS::IAM::Policy":
            continue
        props = res.get("Properties", {})
        if any(ref_name(x) == role_lid for x in as_list(props.get("Roles", []))):
            out.extend(as_list(props.get("PolicyDocument", {}).get("Statement", [])))
    return out


# Actions with no resource-level permissions (the Service Authorization Reference lists no
# resource type for them): "*" is the only resource they take.
RESOURCELESS_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def leading_keys(stmt: dict) -> set[str] | None:
    cond = stmt.get("Condition") or {}
    for op, body in cond.items():
        if op.startswith("ForAllValues:") and isinstance(body, dict) and "dynamodb:LeadingKeys" in body:
            return set(as_list(body["dynamodb:LeadingKeys"]))
    return None


# ------------------------------------------------------------------------------------- checks


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--template", default=str(ROOT / "infra" / "template.yaml"))
    ap.add_argument("--jhe", default="target/debug/jhe", help="the jhe binary (default target/debug/jhe)")
    ap.add_argument("--routes-json", help="read the route table from this file instead of `jhe routes`")
    args = ap.parse_args()

    try:
        template = load_template(Path(args.template))
        routes = load_routes(args)
    except SystemExit as e:
        print(e)
        print("template_check: 0 passed, 1 failed")
        return 2

    r = Report()
    resources = template.get("Resources", {})
    globals_fn = (template.get("Globals") or {}).get("Function", {}) or {}
    groups = sorted({x["group"] for x in routes})
    apis = {k for k, v in resources.items() if v.get("Type") == "AWS::Serverless::HttpApi"}
    r.check(len(apis) == 1, f"one AWS::Serverless::HttpApi ({', '.join(sorted(apis)) or 'none'})")

    # -- functions and their groups
    functions: dict[str, str] = {}  # logical id -> group
    for lid, res in sorted(resources.items()):
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        meta = res.get("Metadata") or {}
        binary = ((meta.get("BuildProperties") or {}).get("Binary")) or ""
        group = binary[len("jhe-"):] if binary.startswith("jhe-") else None
        r.check(meta.get("BuildMethod") == "rust-cargolambda" and group in groups,
                f"{lid}: rust-cargolambda binary {binary or '?'} of a route group",
                f"BuildMethod {meta.get('BuildMethod')!r}, groups are {', '.join(groups)}")
        if group:
            functions[lid] = group
        want = {"Runtime": "provided.al2023", "Architectures": ["arm64"], "Handler": "bootstrap", "CodeUri": ".."}
        got = {k: effective(res, globals_fn, k) for k in want}
        r.check(got == want, f"{lid}: {', '.join(f'{k} {v}' for k, v in want.items())}", f"got {got}")
    for g in groups:
        owners = [lid for lid, fg in functions.items() if fg == g]
        r.check(len(owners) == 1, f"group {g}: exactly one function", f"found {owners or 'none'}")

    # -- events <-> route table
    events: dict[tuple[str, str], list[tuple[str, str]]] = {}  # (METHOD, path) -> [(function, event)]
    for lid, group in functions.items():
        for ename, ev in sorted((resources[lid].get("Properties", {}).get("Events") or {}).items()):
            if ev.get("Type") != "HttpApi":
                r.check(False, f"{lid}.{ename}: HttpApi event", f"type {ev.get('Type')}")
                continue
            p = ev.get("Properties") or {}
            method, path = str(p.get("Method", "")).upper(), p.get("Path")
            events.setdefault((method, path), []).append((lid, ename))
            if isinstance(path, str) and path != "/" and path.endswith("/"):
                r.check(False, f"{lid}.{ename}: {method} {path} has no trailing slash",
                        "HTTP API route keys cannot end in '/' (SAM creates the integration but no route)")
            r.check(ref_name(p.get("ApiId")) in apis and str(p.get("PayloadFormatVersion", "2.0")) == "2.0",
                    f"{lid}.{ename}: {method} {path} on the HttpApi, payload 2.0",
                    f"ApiId {p.get('ApiId')}, PayloadFormatVersion {p.get('PayloadFormatVersion')}")
    for key, owners in events.items():
        if len(owners) > 1:
            r.check(False, f"route {key[0]} {key[1]} declared once", f"declared by {owners}")

    by_key: dict[tuple[str, str], set[str]] = {}
    for x in routes:
        key = (x["method"].upper(), route_key_path(x["path"]))
        by_key.setdefault(key, set()).add(x["group"])
        owners = events.get(key, [])
        note = "" if key[1] == x["path"] else f" (route key {key[0]} {key[1]}: no trailing slash)"
        ok = any(functions[lid] == x["group"] for lid, _ in owners)
        r.check(ok, f"route {x['group']} {x['method']} {x['path']} -> "
                    f"{', '.join(f'{l}.{e}' for l, e in owners) or '?'}{note}",
                "no HttpApi event of that group's function" if not owners else
                f"routed to {', '.join(functions[l] for l, _ in owners)}")
    for key, owners in sorted(events.items(), key=lambda kv: kv[0][1] or ""):
        for lid, ename in owners:
            want_groups = by_key.get(key, set())
            r.check(functions[lid] in want_groups,
                    f"event {lid}.{ename} {key[0]} {key[1]} is a {functions[lid]} route of the table",
                    "not in the route table" if not want_groups else f"the table gives it to {sorted(want_groups)}")

    # -- log groups
    for lid in functions:
        props = resources[lid].get("Properties", {})
        lg = ref_name((props.get("LoggingConfig") or {}).get("LogGroup"))
        lgr = resources.get(lg or "", {})
        ok = lgr.get("Type") == "AWS::Logs::LogGroup" and ref_name(
            (lgr.get("Properties") or {}).get("RetentionInDays")) == "LogRetentionDays"
        r.check(ok, f"{lid}: own log group {lg} with RetentionInDays = LogRetentionDays")

    # -- IAM
    for lid, group in functions.items():
        role_lid = None
        role = effective(resources[lid], globals_fn, "Role")
        if isinstance(role, dict) and "Fn::GetAtt" in role:
            ga = role["Fn::GetAtt"]
            role_lid = ga[0] if isinstance(ga, list) else str(ga).split(".")[0]
        role_res = resources.get(role_lid or "", {})
        if not r.check(role_res.get("Type") == "AWS::IAM::Role" and not role_res.get("Properties", {}).get("ManagedPolicyArns"),
                       f"{lid}: own IAM role, no managed policies", f"Role {role}"):
            continue
        others = [l for l, g in functions.items() if l != lid and
                  isinstance(effective(resources[l], globals_fn, "Role"), dict) and
                  effective(resources[l], globals_fn, "Role") == role]
        r.check(not others, f"{lid}: role {role_lid} not shared", f"also used by {others}")
        stars, writes = [], []
        for st in statements(role_res, role_lid, resources):
            if st.get("Effect") != "Allow":
                continue
            if any(res == "*" for res in as_list(st.get("Resource", []))) and not set(
                    as_list(st.get("Action", []))) <= RESOURCELESS_ACTIONS:
                stars.append(st.get("Sid", "?"))
            acts = set(as_list(st.get("Action", [])))
            if any(a.endswith("*") for a in acts):
                stars.append(f"{st.get('Sid', '?')} (action wildcard)")
            w = acts & WRITE_ACTIONS
            if w:
                writes.append((st, w))
        r.check(not stars, f"{lid}: no '*' resource or action in Allow statements", f"in {stars}")
        if group in NO_DATA_GROUPS:
            r.check(not writes and not any(
                str(a).startswith(("dynamodb:", "s3:", "cognito-idp:"))
                for st in statements(role_res, role_lid, resources) for a in as_list(st.get("Action", []))),
                f"{lid}: no data access at all")
        if group in READ_ONLY_GROUPS:
            def audit_only(st, w):
                if w == {"dynamodb:PutItem"}:
                    keys = leading_keys(st)
                    return keys is not None and keys <= AUDIT_KEYS
                if w == {"s3:PutObject"}:
                    return all("AuditBucket" in json.dumps(res) for res in as_list(st.get("Resource", [])))
                return False

            bad = [st.get("Sid", "?") for st, w in writes if not audit_only(st, w)]
            r.check(not bad, f"{lid}: read-only (writes only audit records)", f"write statements {bad}")

    # -- CloudFront forwards every API path
    dists = [v for v in resources.values() if v.get("Type") == "AWS::CloudFront::Distribution"]
    if dists:
        behaviors = (dists[0].get("Properties", {}).get("DistributionConfig", {}).get("CacheBehaviors") or [])
        api_patterns = [b.get("PathPattern") for b in behaviors if b.get("TargetOriginId") == "api"]
        uncovered = sorted({x["path"] for x in routes
                            if not any(fnmatch.fnmatchcase(x["path"], p) for p in api_patterns)})
        r.check(not uncovered, f"CloudFront forwards every route path to the API ({', '.join(api_patterns)})",
                f"not forwarded: {uncovered}")

    # -- binaries
    for lid, group in sorted(functions.items(), key=lambda kv: kv[1]):
        what = f"{lid}: functions/{group}/Cargo.toml declares jhe-{group}"
        cargo = ROOT / "functions" / group / "Cargo.toml"
        if not cargo.exists():
            r.check(False, what, "no such file")
            continue
        names = set()
        if tomllib:
            data = tomllib.loads(cargo.read_text(encoding="utf-8"))
            names.add((data.get("package") or {}).get("name"))
            names.update(b.get("name") for b in data.get("bin", []) or [])
        else:
            names.update(re.findall(r'^\s*name\s*=\s*"([^"]+)"', cargo.read_text(encoding="utf-8"), re.M))
        r.check(f"jhe-{group}" in names, what, f"names found: {sorted(n for n in names if n)}")

    # -- events/
    events_dir = ROOT / "events"
    expected_file = events_dir / "expected-status.json"
    expected = json.loads(expected_file.read_text(encoding="utf-8")) if expected_file.exists() else {}
    for lid, group in sorted(functions.items(), key=lambda kv: kv[1]):
        files = sorted((events_dir / group).glob("*.json"))
        r.check(bool(files), f"{lid}: events/{group}/ has at least one event", "none")
        keys = {(m, p) for (m, p), owners in events.items() if any(l == lid for l, _ in owners)}
        for f in files:
            rel = f"{group}/{f.name}"
            try:
                ev = json.loads(f.read_text(encoding="utf-8"))
            except ValueError as e:
                r.check(False, f"events/{rel}: JSON", str(e))
                continue
            method = (ev.get("requestContext") or {}).get("http", {}).get("method", "")
            rk = ev.get("routeKey", "")
            rk_method, _, rk_path = rk.partition(" ")
            raw = ev.get("rawPath", "")
            problems = []
            if ev.get("version") != "2.0":
                problems.append("version is not 2.0")
            if (rk_method, rk_path) not in keys:
                problems.append(f"route key {rk!r} is not one of {lid}'s routes")
            if rk_method != method:
                problems.append(f"method {method!r} differs from the route key")
            if not path_regex(rk_path or "/").match(raw):
                problems.append(f"rawPath {raw!r} does not match the route")
            if (ev.get("requestContext") or {}).get("http", {}).get("path") != raw:
                problems.append("requestContext.http.path differs from rawPath")
            if "host" not in (ev.get("headers") or {}) or "isBase64Encoded" not in ev:
                problems.append("no host header or isBase64Encoded")
            if not isinstance(expected.get(rel), int):
                problems.append("no status in events/expected-status.json")
            r.check(not problems, f"events/{rel}: {rk} -> {expected.get(rel, '?')}", "; ".join(problems))
    for rel in sorted(expected):
        if not (events_dir / rel).exists():
            r.check(False, f"events/expected-status.json: {rel} exists", "no such event file")

    print(f"template_check: {r.passed} passed, {r.failed} failed")
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
