"""Validate FHIR R5 JSON documents written by the test suites.

Usage:
    python tests/harness/fhir_validate.py [--structure-only] [-v] DIR [DIR ...]

Every ``*.json`` file under each DIR (recursively; a plain file argument is taken as is) must be
one FHIR resource. Each file is checked in three layers:

1. **fhir.resources (R5, 5.0.0)**: the model class is picked from ``resourceType`` and the document
   is parsed with pydantic: unknown elements, missing required elements (e.g. ``Group.type``,
   ``Bundle.type``, ``CapabilityStatement.date``), wrong shapes (object vs. list), bad primitive
   formats (``instant`` without seconds or zone, ``id`` characters) and choice-type clashes.
   Resources inside ``Bundle.entry.resource`` and ``response.outcome`` are validated with their
   own model as part of the Bundle.
2. **JSON rules that the models let through**: primitives must have their JSON type (``"total":
   "3"`` or ``"active": "true"`` are accepted by fhir.resources but are not FHIR JSON), no
   ``null``, no empty strings, arrays or objects, every nested resource carries ``resourceType``
   (fhir.resources silently accepts ``entry.resource`` without one), resource ids are at most 64
   characters, ``Attachment.data`` is valid base64, codes with a *required* binding use their
   value set (only the elements this server emits are listed in ``REQUIRED_CODES``).
3. **R5 invariants** the models do not evaluate: Bundle bdl-1/2/3a/3b/3c/3d/5/7/8/15/18, the
   ``fullUrl``/``id`` agreement and ``response.status`` format, CapabilityStatement
   cpb-1/2/4/9/12/14/15/16, Group grp-1, Observation obs-6, and one JupyterHealth rule
   (``jhe-omh``): an Open mHealth Observation's ``valueAttachment`` decodes to a JSON data point
   with ``header`` and ``body``.

``--structure-only`` runs layer 1 alone. Each problem is printed as one line
``FAIL <file>: [<rule>] <location>: <message>``; the last line is exactly
``fhir.resources: N passed, M failed`` (files). The exit status is 1 when M > 0 or when N == 0
(no files means the tests that produce them did not run), else 0.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fhir.resources
from fhir.resources import get_fhir_model_class
from pydantic import ValidationError

OMH_SYSTEM = "https://w3id.org/openmhealth"

# Codes with a required binding in R5, for the elements a JHE server renders. Keys are element
# paths from the resource root (no indices); a key starting with "." matches any path ending so.
REQUIRED_CODES: dict[str, frozenset[str]] = {
    key: frozenset(values.split())
    for key, values in {
        "Bundle.type": "document message transaction transaction-response batch batch-response "
        "history searchset collection subscription-notification",
        "Bundle.entry.search.mode": "match include outcome",
        "Bundle.entry.request.method": "GET HEAD POST PUT DELETE PATCH",
        "Observation.status": "registered specimen-in-process preliminary final amended "
        "corrected appended cancelled entered-in-error unknown",
        "Group.type": "person animal practitioner device careteam healthcareservice location "
        "organization relatedperson specimen",
        "Group.membership": "definitional enumerated",
        "Device.status": "active inactive entered-in-error",
        "Device.name.type": "registered-name user-friendly-name patient-reported-name",
        "Patient.gender": "male female other unknown",
        "QuestionnaireResponse.status": "in-progress completed amended entered-in-error stopped",
        "CapabilityStatement.status": "draft active retired unknown",
        "CapabilityStatement.kind": "instance capability requirements",
        "CapabilityStatement.rest.mode": "client server",
        "CapabilityStatement.rest.interaction.code": "transaction batch search-system "
        "history-system",
        "CapabilityStatement.rest.resource.interaction.code": "read vread update patch delete "
        "history-instance history-type create search-type",
        "CapabilityStatement.rest.resource.searchParam.type": "number date string token "
        "reference composite quantity uri special resource",
        "CapabilityStatement.rest.resource.versioning": "no-version versioned versioned-update",
        "CapabilityStatement.rest.resource.conditionalRead": "not-supported modified-since "
        "not-match full-support",
        "CapabilityStatement.rest.resource.conditionalDelete": "not-supported single multiple",
        "OperationOutcome.issue.severity": "fatal error warning information success",
        "OperationOutcome.issue.code": "invalid structure required value invariant security "
        "login unknown expired forbidden suppressed processing not-supported duplicate "
        "multiple-matches not-found deleted too-long code-invalid extension too-costly "
        "business-rule conflict limited-filter transient lock-error no-store exception timeout "
        "incomplete throttled informational success",
        "AuditEvent.action": "C R U D E",
        "AuditEvent.severity": "emergency alert critical error warning notice informational debug",
        ".telecom.system": "phone fax email pager url sms other",
        ".telecom.use": "home work temp old mobile",
        ".identifier.use": "usual official temp secondary old",
        "Patient.name.use": "usual official temp nickname anonymous old maiden",
        "Practitioner.name.use": "usual official temp nickname anonymous old maiden",
    }.items()
}

# Element paths whose value is a whole resource (validated as one, must carry resourceType).
RESOURCE_SLOTS = frozenset(
    {
        "Bundle.entry.resource",
        "Bundle.entry.response.outcome",
        "Bundle.issues",
        "Parameters.parameter.resource",
        "Parameters.parameter.part.resource",
    }
)

STATUS_LINE = re.compile(r"^[1-5][0-9]{2}( .*)?$")
ABSOLUTE_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
MAX_ID_LENGTH = 64


# --------------------------------------------------------------------------------------------
# Layer 1: fhir.resources
# --------------------------------------------------------------------------------------------


def format_location(loc: tuple[Any, ...]) -> str:
    """Render a pydantic error location as ``entry[0].resource.status``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(resource)"


def model_errors(data: dict[str, Any]) -> tuple[Any | None, list[str]]:
    """Parse ``data`` with its fhir.resources R5 model; return (model or None, problems)."""
    resource_type = data.get("resourceType")
    if not isinstance(resource_type, str):
        return None, ["[structure] (resource): top-level object has no string resourceType"]
    try:
        model_class = get_fhir_model_class(resource_type)
    except ValueError:
        return None, [f"[structure] resourceType: unknown R5 resource type {resource_type!r}"]
    try:
        return model_class.model_validate(data), []
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            message = error["msg"]
            if error["type"] in ("value_error", "string_pattern_mismatch"):
                message += f" (got {short_repr(error.get('input'))})"
            problems.append(f"[structure] {format_location(error['loc'])}: {message}")
        return None, problems
    except KeyError as exc:
        # fhir.resources raises KeyError('<Name>Type') for an unknown nested resourceType.
        name = str(exc).strip("'\"").removesuffix("Type")
        return None, [f"[structure] (nested resource): unknown R5 resource type {name!r}"]
    except Exception as exc:  # noqa: BLE001 - any parser crash is a validation failure
        return None, [f"[structure] (resource): {type(exc).__name__}: {exc}"]


def short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------------------------
# Layer 2: JSON rules
# --------------------------------------------------------------------------------------------


def json_type_errors(raw: Any, canonical: Any, where: str = "") -> Iterator[str]:
    """Compare the input with the model's canonical JSON: a primitive that the model stores as a
    number or boolean must already be a JSON number or boolean in the input."""
    if isinstance(raw, dict) and isinstance(canonical, dict):
        for key, value in raw.items():
            if key in canonical:
                yield from json_type_errors(value, canonical[key], join(where, key))
    elif isinstance(raw, list) and isinstance(canonical, list):
        for index, (item, canon) in enumerate(zip(raw, canonical, strict=False)):
            yield from json_type_errors(item, canon, f"{where}[{index}]")
    elif isinstance(canonical, bool):
        if not isinstance(raw, bool):
            yield f"[json-type] {where}: must be a JSON boolean, got {short_repr(raw)}"
    elif isinstance(canonical, (int, float)):
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            yield f"[json-type] {where}: must be a JSON number, got {short_repr(raw)}"


def join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def required_codes_for(element_path: str) -> frozenset[str] | None:
    """The required value set bound to ``element_path``, if listed in REQUIRED_CODES."""
    if element_path in REQUIRED_CODES:
        return REQUIRED_CODES[element_path]
    for key, values in REQUIRED_CODES.items():
        if key.startswith(".") and element_path.endswith(key):
            return values
    return None


def is_attachment_data(element_path: str) -> bool:
    return element_path.endswith(("Attachment.data", ".attachment.data"))


def json_rule_errors(value: Any, element_path: str, where: str) -> Iterator[str]:
    """Walk one resource's JSON. ``element_path`` is the FHIR path without indices
    (``Bundle.entry.resource``), ``where`` the JSON location used in messages."""
    if value is None:
        yield f"[json-null] {where}: null is not allowed in FHIR JSON (omit the element)"
        return
    if isinstance(value, str):
        if not value.strip():
            yield f"[json-empty] {where}: empty or whitespace-only string"
        allowed = required_codes_for(element_path)
        if allowed is not None and value not in allowed:
            yield f"[code] {where}: {value!r} is not in the required value set of {element_path}"
        if is_attachment_data(element_path) and not is_base64(value):
            yield f"[base64] {where}: Attachment.data is not valid base64"
        return
    if isinstance(value, list):
        # One exception, on purpose: an empty searchset carries `"entry": []`, as upstream JHE
        # sends it, because jupyterhealth-client reads `bundle["entry"]` without a default.
        if not value and element_path != "Bundle.entry":
            yield f"[json-empty] {where}: empty array (omit the element)"
        for index, item in enumerate(value):
            yield from json_rule_errors(item, element_path, f"{where}[{index}]")
        return
    if not isinstance(value, dict):
        return
    if not value:
        yield f"[json-empty] {where}: empty object (omit the element)"
        return
    if element_path in RESOURCE_SLOTS or element_path.endswith(".contained"):
        yield from resource_errors(value, where)
        return
    for key, item in value.items():
        yield from json_rule_errors(item, f"{element_path}.{key.lstrip('_')}", join(where, key))


def is_base64(text: str) -> bool:
    compact = "".join(text.split())
    try:
        base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def resource_errors(resource: dict[str, Any], where: str = "") -> Iterator[str]:
    """JSON rules and invariants of one resource and, recursively, of the resources it holds."""
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        label = where or "(resource)"
        yield f"[resourceType] {label}: a resource must carry resourceType"
        return
    resource_id = resource.get("id")
    if isinstance(resource_id, str) and len(resource_id) > MAX_ID_LENGTH:
        yield f"[id] {join(where, 'id')}: longer than {MAX_ID_LENGTH} characters"
    for key, value in resource.items():
        if key == "resourceType":
            continue
        yield from json_rule_errors(value, f"{resource_type}.{key.lstrip('_')}", join(where, key))
    checker = INVARIANTS.get(resource_type)
    if checker is not None:
        for problem in checker(resource):
            rule, _, message = problem.partition(" ")
            yield f"{rule} {where}: {message}" if where else problem


# --------------------------------------------------------------------------------------------
# Layer 3: R5 invariants (and one JHE rule)
# --------------------------------------------------------------------------------------------


def bundle_invariants(bundle: dict[str, Any]) -> Iterator[str]:
    """Bundle invariants of R5 (bdl-*) plus the fullUrl/id and response.status rules."""
    bundle_type = bundle.get("type")
    entries = [e for e in bundle.get("entry") or [] if isinstance(e, dict)]
    if "total" in bundle and bundle_type not in ("searchset", "history"):
        yield "[bdl-1] total only when a search or history"
    if bundle_type != "searchset" and any("search" in e for e in entries):
        yield "[bdl-2] entry.search only when a search"
    for index, entry in enumerate(entries):
        has = {k: k in entry for k in ("resource", "request", "response", "fullUrl")}
        method = (entry.get("request") or {}).get("method")
        if bundle_type in ("document", "message", "searchset", "collection"):
            if not has["resource"] or has["request"] or has["response"]:
                yield (
                    f"[bdl-3a] entry[{index}]: in a {bundle_type} Bundle every entry has a "
                    "resource and no request/response"
                )
        if bundle_type == "history":
            if (
                not (has["request"] and has["response"])
                or (method in ("POST", "PUT", "PATCH")) != has["resource"]
            ):
                yield (
                    f"[bdl-3b] entry[{index}]: history entries need request and response, and "
                    "a resource exactly for POST/PUT/PATCH"
                )
        if bundle_type in ("transaction", "batch"):
            if method is None or (method in ("POST", "PUT", "PATCH")) != has["resource"]:
                yield (
                    f"[bdl-3c] entry[{index}]: {bundle_type} entries need request.method, and a "
                    "resource exactly for POST/PUT/PATCH"
                )
        if bundle_type in ("transaction-response", "batch-response") and not has["response"]:
            yield f"[bdl-3d] entry[{index}]: {bundle_type} entries need a response"
        if not (has["resource"] or has["request"] or has["response"]):
            yield f"[bdl-5] entry[{index}]: must be a resource unless there's a request or response"
        full_url = entry.get("fullUrl")
        if isinstance(full_url, str) and "/_history/" in full_url:
            yield f"[bdl-8] entry[{index}].fullUrl: cannot be a version specific reference"
        if bundle_type not in ("transaction", "transaction-response", "batch", "batch-response"):
            if not has["fullUrl"] and method != "POST":
                yield (
                    f"[bdl-15] entry[{index}]: a {bundle_type} Bundle SHALL have "
                    "entry.fullUrl (e.g. <base>/FHIR/R5/<type>/<id>)"
                )
        yield from full_url_agreement(entry, index)
        status = (entry.get("response") or {}).get("status")
        if isinstance(status, str) and not STATUS_LINE.match(status):
            yield (
                f"[bdl-status] entry[{index}].response.status: must start with a 3 digit HTTP "
                f"code, got {status!r}"
            )
    if bundle_type != "history":
        seen: set[tuple[str, str]] = set()
        for entry in entries:
            if isinstance(entry.get("fullUrl"), str):
                version = ((entry.get("resource") or {}).get("meta") or {}).get("versionId", "")
                key = (entry["fullUrl"], str(version))
                if key in seen:
                    yield f"[bdl-7] fullUrl {entry['fullUrl']!r} is not unique in the Bundle"
                seen.add(key)
    if bundle_type == "searchset":
        links = [link for link in bundle.get("link") or [] if isinstance(link, dict)]
        if not any(link.get("relation") == "self" and link.get("url") for link in links):
            yield "[bdl-18] a searchset Bundle needs a link with relation 'self'"


def full_url_agreement(entry: dict[str, Any], index: int) -> Iterator[str]:
    """Bundle.entry.fullUrl is an absolute URI (R5: "The Absolute URL for the resource") and a
    http(s) fullUrl SHALL NOT disagree with the resource's type and id."""
    full_url = entry.get("fullUrl")
    if not isinstance(full_url, str):
        return
    where = f"entry[{index}].fullUrl"
    if not ABSOLUTE_URI.match(full_url):
        yield (
            f"[bdl-fullUrl] {where}: must be an absolute URI (<base>/FHIR/R5/<type>/<id>), "
            f"got {full_url!r}"
        )
        return
    resource = entry.get("resource")
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        return  # no resource, or reported as [resourceType]
    if full_url.startswith(("http://", "https://")) and "id" in resource:
        expected = f"/{resource['resourceType']}/{resource['id']}"
        if not full_url.rstrip("/").endswith(expected):
            yield f"[bdl-fullUrl] {where}: {full_url!r} disagrees with the resource (...{expected})"


def capability_invariants(statement: dict[str, Any]) -> Iterator[str]:
    """CapabilityStatement invariants of R5 (cpb-*)."""
    kind = statement.get("kind")
    if not any(k in statement for k in ("rest", "messaging", "document")):
        yield "[cpb-1] needs at least one of rest, messaging or document"
    if not any(k in statement for k in ("description", "software", "implementation")):
        yield "[cpb-2] needs at least one of description, software or implementation"
    rests = [r for r in statement.get("rest") or [] if isinstance(r, dict)]
    modes = [r.get("mode") for r in rests]
    if len(modes) != len(set(modes)):
        yield "[cpb-4] only one rest entry per mode"
    for rest_index, rest in enumerate(rests):
        resources = [r for r in rest.get("resource") or [] if isinstance(r, dict)]
        types = [r.get("type") for r in resources]
        for duplicate in sorted({t for t in types if types.count(t) > 1}, key=str):
            yield f"[cpb-9] rest[{rest_index}]: resource type {duplicate!r} described twice"
        for resource_index, resource in enumerate(resources):
            names = [
                p.get("name") for p in resource.get("searchParam") or [] if isinstance(p, dict)
            ]
            for duplicate in sorted({n for n in names if names.count(n) > 1}, key=str):
                yield (
                    f"[cpb-12] rest[{rest_index}].resource[{resource_index}]: search "
                    f"parameter {duplicate!r} listed twice"
                )
    if kind == "instance" and "implementation" not in statement:
        yield "[cpb-14] kind = instance requires implementation"
    if kind == "capability" and ("implementation" in statement or "software" not in statement):
        yield "[cpb-15] kind = capability: implementation absent, software present"
    if kind == "requirements" and ("implementation" in statement or "software" in statement):
        yield "[cpb-16] kind = requirements: implementation and software absent"


def group_invariants(group: dict[str, Any]) -> Iterator[str]:
    """Group invariant of R5: members only in an enumerated group."""
    if group.get("member") and group.get("membership") != "enumerated":
        yield "[grp-1] a Group can only have member entries if membership = 'enumerated'"


def observation_invariants(observation: dict[str, Any]) -> Iterator[str]:
    """Observation obs-6 and the JupyterHealth Open mHealth attachment convention."""
    has_value = any(key.startswith("value") for key in observation)
    if "dataAbsentReason" in observation and has_value:
        yield "[obs-6] dataAbsentReason only when there is no value[x]"
    codings = (observation.get("code") or {}).get("coding") or []
    is_omh = any(isinstance(c, dict) and c.get("system") == OMH_SYSTEM for c in codings)
    attachment = observation.get("valueAttachment")
    if is_omh and isinstance(attachment, dict):
        yield from omh_attachment_errors(attachment)


def omh_attachment_errors(attachment: dict[str, Any]) -> Iterator[str]:
    """An OMH Observation's valueAttachment is base64 JSON of a data point {header, body}."""
    if attachment.get("contentType") != "application/json":
        yield (
            f"[jhe-omh] valueAttachment.contentType must be 'application/json', got "
            f"{attachment.get('contentType')!r}"
        )
    data = attachment.get("data")
    if not isinstance(data, str) or not is_base64(data):
        yield "[jhe-omh] valueAttachment.data must be base64"
        return
    try:
        point = json.loads(base64.b64decode("".join(data.split())))
    except (ValueError, UnicodeDecodeError) as exc:
        yield f"[jhe-omh] valueAttachment.data does not decode to JSON: {exc}"
        return
    if (
        not isinstance(point, dict)
        or not isinstance(point.get("header"), dict)
        or not isinstance(point.get("body"), dict)
    ):
        yield "[jhe-omh] valueAttachment.data must be an OMH data point {header, body}"
        return
    schema_id = point["header"].get("schema_id")
    if not isinstance(schema_id, dict) or not all(
        schema_id.get(k) for k in ("namespace", "name", "version")
    ):
        yield "[jhe-omh] data point header.schema_id needs namespace, name and version"


INVARIANTS = {
    "Bundle": bundle_invariants,
    "CapabilityStatement": capability_invariants,
    "Group": group_invariants,
    "Observation": observation_invariants,
}


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def validate_document(data: Any, structure_only: bool = False) -> list[str]:
    """All problems of one parsed JSON document (empty list: valid)."""
    if not isinstance(data, dict):
        return [f"[structure] (document): expected a JSON object, got {type(data).__name__}"]
    model, problems = model_errors(data)
    if structure_only:
        return problems
    if model is not None:
        canonical = json.loads(model.model_dump_json())
        problems.extend(json_type_errors(data, canonical))
    problems.extend(resource_errors(data))
    return problems


def validate_file(path: Path, structure_only: bool = False) -> list[str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [f"[json] (document): cannot read JSON: {exc}"]
    return validate_document(data, structure_only)


def one_line(text: str) -> str:
    """Escape line breaks and tabs (pydantic quotes regexes that contain them)."""
    return text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")


def collect_files(targets: list[Path]) -> tuple[list[tuple[Path, str]], list[str]]:
    """(file, display name) pairs under the targets, and the targets that do not exist."""
    files: list[tuple[Path, str]] = []
    missing: list[str] = []
    for target in targets:
        if target.is_file():
            files.append((target, str(target)))
        elif target.is_dir():
            for path in sorted(target.rglob("*.json")):
                if path.is_file():
                    files.append((path, str(path.relative_to(target))))
        else:
            missing.append(str(target))
    return files, missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="folder of *.json files")
    parser.add_argument(
        "--structure-only", action="store_true", help="only the fhir.resources model validation"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="also list passing files")
    args = parser.parse_args(argv)

    files, missing = collect_files(args.dirs)
    for target in missing:
        print(f"no such file or folder: {target} (did the tests that write FHIR JSON run?)")
    passed = failed = 0
    for path, name in files:
        problems = validate_file(path, args.structure_only)
        if problems:
            failed += 1
            for problem in problems:
                print(f"FAIL {name}: {one_line(problem)}")
        else:
            passed += 1
            if args.verbose:
                print(f"ok   {name}")
    if passed == 0 and failed == 0:
        print("no *.json files found: the tests that write FHIR JSON did not run")
    print(f"(FHIR {fhir.resources.__fhir_version__}, fhir.resources {fhir.resources.__version__})")
    print(f"fhir.resources: {passed} passed, {failed} failed")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
