"""Upstream's verdict on Open mHealth data points, for the differential test of JHE's validator.

Usage:
    python tests/harness/omh_verdicts.py SCHEMAS_DIR < cases.json > verdicts.json

Reads a JSON list of cases ``{"code": "omh:heart-rate:2.0", "data_point": {...}}`` and writes a
JSON list of the same length: ``true`` (accepted) or a string (why refused). It validates as
upstream JupyterHealth Exchange does (``core/utils.py`` ``validate_with_registry`` and
``Observation.clean``): the header against IEEE 1752 ``header-1.0``, the body against the schema
of the code (``omh:<name>:<version>`` -> ``<name>-<version>.json``, ``ieee:`` likewise), with the
draft's validator class chosen from ``$schema`` (``validator_for``), no format checker (``format`` is
an annotation), and a registry of local files only (no remote ``$ref``). SCHEMAS_DIR is the shipped
copy of the schemas (``shared/schemas``: ``omh/`` and ``ieee/``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from jsonschema import validators
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource

OMH_BASE = "https://w3id.org/openmhealth/schemas/omh/"
IEEE_BASE = "https://w3id.org/ieee/ieee-1752-schema/"


def load(path: Path) -> dict:
    text = path.read_text().strip()
    if not text.startswith("{"):  # an alias: the name of a file beside it
        return load(path.with_name(text))
    return json.loads(text)


def registry(root: Path) -> tuple[Registry, dict[str, dict]]:
    documents: dict[str, dict] = {}
    for path in sorted((root / "omh").glob("*.json")):
        documents[OMH_BASE + path.name] = load(path)
    for path in sorted((root / "ieee").rglob("*.json")):
        documents[IEEE_BASE + path.name] = load(path)

    def refuse(uri: str):
        raise NoSuchResource(ref=uri)

    reg = Registry(retrieve=refuse).with_resources(
        (url, Resource.from_contents(doc)) for url, doc in documents.items()
    )
    return reg, documents


def verdict(reg: Registry, documents: dict[str, dict], code: str, data_point) -> bool | str:
    parts = code.split(":")
    if len(parts) != 3 or parts[0] not in ("omh", "ieee"):
        return f"no schema for {code!r}"
    base = OMH_BASE if parts[0] == "omh" else IEEE_BASE
    body_url = f"{base}{parts[1]}-{parts[2]}.json"
    if body_url not in documents:
        return f"no schema for {code!r}"
    if not isinstance(data_point, dict):
        return "data point is not an object"
    for url, instance in ((IEEE_BASE + "header-1.0.json", data_point.get("header")), (body_url, data_point.get("body"))):
        schema = documents[url]
        cls = validators.validator_for(schema)
        cls.check_schema(schema)
        # The base URI is where the document sits; upstream registers each file under it.
        # (Draft 4 names it `id`; later drafts `$id`.)
        resolver_schema = dict(schema)
        resolver_schema.setdefault("id" if cls is validators.Draft4Validator else "$id", url)
        error = next(cls(resolver_schema, registry=reg).iter_errors(instance), None)
        if error is not None:
            return f"{url.rsplit('/', 1)[1]}: {error.message}"
    return True


def main() -> int:
    root = Path(sys.argv[1])
    reg, documents = registry(root)
    cases = json.load(sys.stdin)
    json.dump([verdict(reg, documents, c["code"], c["data_point"]) for c in cases], sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
