"""Self-test of tests/harness/fhir_validate.py: no fixtures in the repository.

Usage:
    python tests/harness/fhir_validate_selftest.py

Builds, in a temporary folder, the FHIR R5 documents a JupyterHealth Exchange server returns (an
Open mHealth Observation with base64 ``valueAttachment``, a searchset Bundle, a batch-response
Bundle with ``201 Created`` and an OperationOutcome entry, Patient, Practitioner, Organization,
Group, Device, OperationOutcome, CapabilityStatement, AuditEvent), checks that each passes, then
checks that broken variants (one mistake each, many of them shapes a server could plausibly emit)
fail with the expected rule. Finally runs the command line on the folders: all-valid exits 0,
mixed exits 1, empty exits 1. Prints one line per check and ``fhir_validate selftest: N passed,
M failed``; exit status 1 on any failure.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import io
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fhir_validate  # noqa: E402

BASE = "http://127.0.0.1:8000/FHIR/R5"
OMH = "https://w3id.org/openmhealth"
MODEL = "https://jupyterhealth.org/fhir/CodeSystem/model"


def omh_data_point() -> dict[str, Any]:
    return {
        "header": {
            "uuid": "aaaa1234-1a2b-3c4d-5e6f-000000000001",
            "schema_id": {"namespace": "omh", "name": "blood-glucose", "version": "4.0"},
            "source_creation_date_time": "2025-01-01T01:04:01-08:00",
            "modality": "sensed",
        },
        "body": {
            "blood_glucose": {"value": 98, "unit": "MGDL"},
            "effective_time_frame": {"date_time": "2025-01-01T00:04:00-08:00"},
        },
    }


def b64json(value: Any) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


def observation(obs_id: str = "60001") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": obs_id,
        "meta": {"lastUpdated": "2025-01-01T20:00:00Z", "source": "https://jupyterhealth.org/jhe"},
        "identifier": [{"system": "https://commonhealth.org", "value": f"obs-{obs_id}"}],
        "status": "final",
        "code": {
            "coding": [{"system": OMH, "code": "omh:blood-glucose:4.0", "display": "Blood glucose"}]
        },
        "subject": {
            "reference": "Patient/40001",
            "identifier": {
                "system": "https://jupyterhealth.org/fhir/identifier/jhe-user-id",
                "value": "10006",
            },
        },
        "effectiveDateTime": "2025-01-01T08:04:00Z",
        "valueAttachment": {"contentType": "application/json", "data": b64json(omh_data_point())},
    }


def searchset() -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": 2,
        "link": [
            {"relation": "self", "url": f"{BASE}/Observation?patient=40001&_count=1"},
            {"relation": "next", "url": f"{BASE}/Observation?patient=40001&_count=1&_page=2"},
        ],
        "entry": [
            {
                "fullUrl": f"{BASE}/Observation/60001",
                "resource": observation("60001"),
                "search": {"mode": "match"},
            }
        ],
    }


def operation_outcome(diagnostics: str = "Patient id=9 can not be found.") -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "processing", "diagnostics": diagnostics}],
    }


def batch_response() -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "batch-response",
        "entry": [
            {
                "resource": observation("60012"),
                "response": {"status": "201 Created", "location": "Observation/60012"},
            },
            {
                "response": {
                    "status": "403 Forbidden",
                    "outcome": operation_outcome("not consented"),
                }
            },
        ],
    }


def patient() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": "40001",
        "meta": {
            "lastUpdated": "2025-01-01T20:00:00.123456Z",
            "source": "https://jupyterhealth.org/jhe",
        },
        "identifier": [{"system": "urn:oid:1.2.3.4", "value": "E1234"}],
        "name": [{"family": "Patient", "given": ["Peter"]}],
        "birthDate": "1980-01-01",
        "telecom": [
            {"system": "phone", "value": "347-111-1111", "use": "mobile"},
            {"system": "email", "value": "ll_patient_peter@example.com", "use": "home"},
        ],
    }


def group() -> dict[str, Any]:
    return {
        "resourceType": "Group",
        "id": "30001",
        "meta": {"source": "https://jupyterhealth.org/jhe"},
        "name": "Cardiology Div Study on BGL",
        "type": "person",
        "membership": "enumerated",
        "code": {"coding": [{"system": MODEL, "code": "study"}]},
        "member": [{"entity": {"reference": "Patient/40004"}}],
    }


def device() -> dict[str, Any]:
    return {
        "resourceType": "Device",
        "id": "70002",
        "name": [{"value": "Dexcom", "type": "user-friendly-name"}],
        "type": [{"coding": [{"system": MODEL, "code": "data-source"}]}],
    }


def organization() -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "id": "20001",
        "name": "Neptune Health System",
        "type": [{"coding": [{"system": MODEL, "code": "organization"}]}],
    }


def practitioner() -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "id": "80001",
        "name": [{"family": "Manager", "given": ["Mark"]}],
    }


def capability_statement() -> dict[str, Any]:
    search_params = [
        {"name": name, "type": kind}
        for name, kind in [
            ("patient", "reference"),
            ("code", "token"),
            ("_id", "token"),
            ("_lastUpdated", "date"),
        ]
    ]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2025-01-01T00:00:00Z",
        "kind": "instance",
        "software": {"name": "JupyterHealth Exchange"},
        "implementation": {"description": "JupyterHealth Exchange", "url": f"{BASE}/"},
        "fhirVersion": "5.0.0",
        "format": ["json"],
        "patchFormat": ["application/json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "extension": [
                        {
                            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                            "extension": [
                                {
                                    "url": "authorize",
                                    "valueUri": "http://127.0.0.1:8000/o/authorize/",
                                },
                                {"url": "token", "valueUri": "http://127.0.0.1:8000/o/token/"},
                            ],
                        }
                    ],
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                },
                "interaction": [{"code": "batch"}],
                "resource": [
                    {
                        "type": "Observation",
                        "interaction": [
                            {"code": "read"},
                            {"code": "search-type"},
                            {"code": "create"},
                        ],
                        "searchParam": search_params,
                    },
                    {"type": "Patient", "interaction": [{"code": "read"}, {"code": "search-type"}]},
                ],
            }
        ],
    }


def audit_event() -> dict[str, Any]:
    return {
        "resourceType": "AuditEvent",
        "code": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"}
            ]
        },
        "action": "R",
        "recorded": "2025-01-01T00:00:00Z",
        "agent": [{"who": {"reference": "Practitioner/80001"}}],
        "source": {"observer": {"display": "JupyterHealth Exchange"}},
    }


def empty_searchset() -> dict[str, Any]:
    """What an empty search answers: `entry` is `[]`, as upstream sends it (clients read it)."""
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": 0,
        "link": [{"relation": "self", "url": "http://127.0.0.1:8000/FHIR/R5/Observation?code=x"}],
        "entry": [],
    }


VALID: dict[str, Callable[[], dict[str, Any]]] = {
    "observation-omh": observation,
    "bundle-searchset": searchset,
    "bundle-searchset-empty": empty_searchset,
    "bundle-batch-response": batch_response,
    "operation-outcome": operation_outcome,
    "patient": patient,
    "practitioner": practitioner,
    "organization": organization,
    "group": group,
    "device": device,
    "capability-statement": capability_statement,
    "audit-event": audit_event,
}


def mutate(
    factory: Callable[[], dict[str, Any]], change: Callable[[dict[str, Any]], Any]
) -> dict[str, Any]:
    document = copy.deepcopy(factory())
    change(document)
    return document


# name -> (broken document, rule tag expected among the problems)
BROKEN: dict[str, tuple[Any, str]] = {
    "observation-no-status": (mutate(observation, lambda d: d.pop("status")), "[structure]"),
    "observation-integer-id": (mutate(observation, lambda d: d.update(id=60001)), "[structure]"),
    "observation-unknown-element": (
        mutate(observation, lambda d: d.update(device_id=70001)),
        "[structure]",
    ),
    "observation-naive-effective": (
        mutate(observation, lambda d: d.update(effectiveDateTime="2025-01-01T08:04:00")),
        "[structure]",
    ),
    "observation-lastupdated-no-seconds": (
        mutate(observation, lambda d: d["meta"].update(lastUpdated="2025-01-01T20:00Z")),
        "[structure]",
    ),
    "observation-data-not-base64": (
        mutate(observation, lambda d: d["valueAttachment"].update(data="{not base64}")),
        "[base64]",
    ),
    "observation-data-not-datapoint": (
        mutate(observation, lambda d: d["valueAttachment"].update(data=b64json({"value": 98}))),
        "[jhe-omh]",
    ),
    "observation-null-element": (
        mutate(observation, lambda d: d.update(issued=None)),
        "[json-null]",
    ),
    "observation-empty-identifier": (
        mutate(observation, lambda d: d.update(identifier=[])),
        "[json-empty]",
    ),
    "observation-bad-status-code": (
        mutate(observation, lambda d: d.update(status="done")),
        "[code]",
    ),
    "searchset-no-fullurl": (mutate(searchset, lambda d: d["entry"][0].pop("fullUrl")), "[bdl-15]"),
    "searchset-fullurl-other-id": (
        mutate(searchset, lambda d: d["entry"][0].update(fullUrl=f"{BASE}/Observation/1")),
        "[bdl-fullUrl]",
    ),
    "searchset-relative-fullurl": (
        mutate(searchset, lambda d: d["entry"][0].update(fullUrl="Observation/60001")),
        "[bdl-fullUrl]",
    ),
    "searchset-no-self-link": (mutate(searchset, lambda d: d["link"].pop(0)), "[bdl-18]"),
    "searchset-total-as-string": (mutate(searchset, lambda d: d.update(total="2")), "[json-type]"),
    "searchset-entry-without-resourcetype": (
        mutate(searchset, lambda d: d["entry"][0]["resource"].pop("resourceType")),
        "[resourceType]",
    ),
    "searchset-entry-invalid-resource": (
        mutate(searchset, lambda d: d["entry"][0]["resource"].pop("code")),
        "[structure]",
    ),
    "searchset-entry-unknown-type": (
        mutate(searchset, lambda d: d["entry"][0]["resource"].update(resourceType="Study")),
        "[structure]",
    ),
    "searchset-no-type": (mutate(searchset, lambda d: d.pop("type")), "[structure]"),
    "batch-response-stub-resource": (
        mutate(
            batch_response,
            lambda d: d["entry"][0].update(resource={"resourceType": "Observation", "id": "60012"}),
        ),
        "[structure]",
    ),
    "batch-response-status-text-only": (
        mutate(batch_response, lambda d: d["entry"][0]["response"].update(status="Created")),
        "[bdl-status]",
    ),
    "batch-response-entry-without-response": (
        mutate(batch_response, lambda d: d["entry"][0].pop("response")),
        "[bdl-3d]",
    ),
    "batch-response-outcome-without-issue-code": (
        mutate(
            batch_response, lambda d: d["entry"][1]["response"]["outcome"]["issue"][0].pop("code")
        ),
        "[structure]",
    ),
    "batch-response-with-total": (mutate(batch_response, lambda d: d.update(total=2)), "[bdl-1]"),
    "operation-outcome-no-issue": (
        mutate(operation_outcome, lambda d: d.pop("issue")),
        "[structure]",
    ),
    "patient-gender-m": (mutate(patient, lambda d: d.update(gender="M")), "[code]"),
    "patient-empty-family": (
        mutate(patient, lambda d: d["name"][0].update(family="")),
        "[json-empty]",
    ),
    "patient-active-as-string": (mutate(patient, lambda d: d.update(active="true")), "[json-type]"),
    "group-no-type": (mutate(group, lambda d: d.pop("type")), "[structure]"),
    "group-no-membership": (mutate(group, lambda d: d.pop("membership")), "[structure]"),
    "group-type-codeable-concept": (
        mutate(group, lambda d: d.update(type={"coding": [{"system": MODEL, "code": "study"}]})),
        "[structure]",
    ),
    "group-r4-actual": (mutate(group, lambda d: d.update(actual=True)), "[structure]"),
    "group-definitional-with-members": (
        mutate(group, lambda d: d.update(membership="definitional")),
        "[grp-1]",
    ),
    "device-r4-devicename": (
        mutate(
            device,
            lambda d: d.update(deviceName=[{"name": "Dexcom", "type": "user-friendly-name"}]),
        ),
        "[structure]",
    ),
    "device-name-string": (mutate(device, lambda d: d.update(name="Dexcom")), "[structure]"),
    "device-type-not-list": (mutate(device, lambda d: d.update(type=d["type"][0])), "[structure]"),
    "organization-type-not-list": (
        mutate(organization, lambda d: d.update(type=d["type"][0])),
        "[structure]",
    ),
    "capability-no-date": (mutate(capability_statement, lambda d: d.pop("date")), "[structure]"),
    "capability-no-format": (
        mutate(capability_statement, lambda d: d.pop("format")),
        "[structure]",
    ),
    "capability-instance-no-implementation": (
        mutate(capability_statement, lambda d: d.pop("implementation")),
        "[cpb-14]",
    ),
    "capability-duplicate-resource": (
        mutate(
            capability_statement, lambda d: d["rest"][0]["resource"].append({"type": "Patient"})
        ),
        "[cpb-9]",
    ),
    "capability-searchparam-no-type": (
        mutate(
            capability_statement,
            lambda d: d["rest"][0]["resource"][0]["searchParam"][0].pop("type"),
        ),
        "[structure]",
    ),
    "capability-bad-interaction": (
        mutate(
            capability_statement,
            lambda d: d["rest"][0]["resource"][0]["interaction"].append({"code": "search"}),
        ),
        "[code]",
    ),
    "unknown-resource-type": ({"resourceType": "Study", "id": "1"}, "[structure]"),
    "json-array": ([observation()], "[structure]"),
}


class Results:
    """Counts and prints one line per check."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        if ok:
            self.passed += 1
            print(f"PASS {name}")
        else:
            self.failed += 1
            print(f"FAIL {name}: {detail}")


def write(folder: Path, name: str, document: Any) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(document, indent=2), encoding="utf-8")


def run_cli(args: list[str]) -> tuple[int, str]:
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        status = fhir_validate.main(args)
    return status, output.getvalue()


def main() -> int:
    results = Results()
    for name, factory in VALID.items():
        problems = fhir_validate.validate_document(factory())
        results.check(f"valid {name}", not problems, "; ".join(problems))
    for name, (document, rule) in BROKEN.items():
        problems = fhir_validate.validate_document(document)
        results.check(
            f"broken {name} -> {rule}",
            any(problem.startswith(rule) for problem in problems),
            "problems: " + ("; ".join(problems) or "none"),
        )

    with tempfile.TemporaryDirectory(prefix="fhir-validate-") as tmp:
        root = Path(tmp)
        valid_dir, mixed_dir, empty_dir = root / "valid", root / "mixed", root / "empty"
        for name, factory in VALID.items():
            write(valid_dir / "nested", name, factory())
            write(mixed_dir, name, factory())
        for name, (document, _) in BROKEN.items():
            write(mixed_dir, f"broken-{name}", document)
        (mixed_dir / "not-json.json").write_text("{oops", encoding="utf-8")
        empty_dir.mkdir()

        status, out = run_cli([str(valid_dir)])
        expected = f"fhir.resources: {len(VALID)} passed, 0 failed"
        results.check(
            "cli: valid folder exits 0", status == 0 and out.rstrip().endswith(expected), out
        )

        status, out = run_cli([str(mixed_dir)])
        expected = f"fhir.resources: {len(VALID)} passed, {len(BROKEN) + 1} failed"
        results.check(
            "cli: mixed folder exits 1", status == 1 and out.rstrip().endswith(expected), out
        )
        failing_files = {
            line.split(":", 1)[0] for line in out.splitlines() if line.startswith("FAIL ")
        }
        results.check(
            "cli: every broken file is named",
            failing_files
            == {f"FAIL broken-{name}.json" for name in BROKEN} | {"FAIL not-json.json"},
            str(sorted(failing_files)),
        )

        status, out = run_cli([str(empty_dir)])
        results.check(
            "cli: empty folder exits 1",
            status == 1 and out.rstrip().endswith("fhir.resources: 0 passed, 0 failed"),
            out,
        )
        status, out = run_cli([str(root / "missing")])
        results.check("cli: missing folder exits 1", status == 1, out)

        status, out = run_cli(["--structure-only", str(valid_dir)])
        results.check("cli: --structure-only on valid folder exits 0", status == 0, out)

    print(f"fhir_validate selftest: {results.passed} passed, {results.failed} failed")
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main())
