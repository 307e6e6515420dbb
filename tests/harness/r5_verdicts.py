"""fhir.resources' verdict on FHIR R5 resources, for the differential test of JHE's validator
(`tests/tests/blackbox/r5_validation.rs`).

Usage:
    python tests/harness/r5_verdicts.py < resources.json > verdicts.json

Reads a JSON list of resources and writes a JSON list of the same length: ``true`` (valid) or the
first problem found. A resource is judged by ``fhir_validate.py`` (the R5 model of its type, the
JSON rules the models let through, the invariants), then by three FHIR rules the models do not
apply, walked over the models' own element metadata: a primitive other than boolean and the
numbers is a JSON string; a code of a required binding is one of its value set's codes
(``enum_values``; for the two hierarchical value sets the full lists of ``gen_r5_elements.py``);
a uri, url or canonical has no whitespace (R5's ``\\S*``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fhir.resources import get_fhir_model_class  # noqa: E402
from fhir_validate import model_errors, validate_document  # noqa: E402
from gen_r5_elements import EXPANDED, describe, model_class  # noqa: E402

NOT_STRINGS = {"boolean", "integer", "decimal", "positiveInt", "unsignedInt"}
NO_SPACES = {"uri", "url", "canonical", "oid", "uuid"}


def walk(cls: Any, owner: str, obj: dict, where: str) -> list[str]:
    problems = []
    fields = {(info.alias or name): (name, info) for name, info in cls.model_fields.items()}
    for key, value in obj.items():
        if key not in fields or key == "resourceType":
            continue
        name, info = fields[key]
        extra = info.json_schema_extra or {}
        if not extra.get("element_property"):
            continue
        kind, _ = describe(info.annotation)
        codes = EXPANDED.get((owner, name)) or [c for c in extra.get("enum_values") or [] if c != "+"]
        if "+" in (extra.get("enum_values") or []) and (owner, name) not in EXPANDED:
            codes = []
        for i, item in enumerate(value if isinstance(value, list) else [value]):
            at = f"{where}.{key}[{i}]" if isinstance(value, list) else f"{where}.{key}"
            if kind[0].islower():
                if kind not in NOT_STRINGS and not isinstance(item, str):
                    problems.append(f"{at}: a {kind} is a JSON string")
                if isinstance(item, str) and codes and item not in codes:
                    problems.append(f"{at}: {item!r} is not in the required value set")
                if kind in NO_SPACES and isinstance(item, str) and any(c.isspace() for c in item):
                    problems.append(f"{at}: a {kind} has no whitespace")
            elif kind == "Resource" and isinstance(item, dict) and isinstance(item.get("resourceType"), str):
                t = item["resourceType"]
                problems += walk(get_fhir_model_class(t), t, item, at)
            elif isinstance(item, dict):
                problems += walk(model_class(kind, cls), kind, item, at)
    return problems


def verdict(resource: Any) -> bool | str:
    if not isinstance(resource, dict):
        return "not an object"
    _, problems = model_errors(resource)
    if not problems:
        problems = validate_document(resource)
    if not problems:
        t = resource["resourceType"]
        problems = walk(get_fhir_model_class(t), t, resource, t)
    return problems[0] if problems else True


def main() -> int:
    cases = json.load(sys.stdin)
    json.dump([verdict(c) for c in cases], sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
