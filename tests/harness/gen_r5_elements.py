"""Writes shared/src/fhir/r5/elements.txt: the R5 element table the server validates stored FHIR
resources against, read from fhir.resources' R5 models (the same models the test command validates
every served resource with). Run from the repository root after changing the list of types:

    .venv/bin/python tests/harness/gen_r5_elements.py

One line per element: ``Owner element type min max [choice-group] [code|code...]``, where type is a
FHIR primitive (lower case) or a complex type (capitalised, itself an owner), min 0/1, max 1/*, the
choice group (``value`` for ``value[x]``) or ``-``, and the required code set (omitted when the
binding is open).
"""
import importlib
import sys
import typing
from pathlib import Path

from fhir.resources import get_fhir_model_class

TYPES = """AllergyIntolerance CarePlan CareTeam Condition Coverage Device DiagnosticReport DocumentReference
Encounter Goal Group Immunization Location Medication MedicationDispense MedicationRequest Observation
Organization Patient Practitioner PractitionerRole Procedure Provenance QuestionnaireResponse
RelatedPerson ServiceRequest""".split()

PRIMITIVES = {"Boolean": "boolean", "Integer": "integer", "Integer64": "integer64", "Decimal": "decimal",
              "PositiveInt": "positiveInt", "UnsignedInt": "unsignedInt", "String": "string", "Code": "code",
              "Id": "id", "Uri": "uri", "Url": "url", "Canonical": "canonical", "Oid": "oid", "Uuid": "uuid",
              "Markdown": "markdown", "Base64Binary": "base64Binary", "Date": "date", "DateTime": "dateTime",
              "Instant": "instant", "Time": "time", "Xhtml": "xhtml", "EncodedBytes": "base64Binary", "UuidVersion": "uuid"}


# Required bindings whose value set is a hierarchy: the models list its top codes and "+"; the R5
# value sets' full code lists (observation-status, request-intent).
EXPANDED = {
    ("Observation", "status"): ["registered", "preliminary", "final", "amended", "corrected", "appended",
                                "cancelled", "entered-in-error", "unknown"],
    ("ServiceRequest", "intent"): ["proposal", "plan", "directive", "order", "original-order", "reflex-order",
                                   "filler-order", "instance-order", "option"],
}


def model_class(name, near):
    try:
        return get_fhir_model_class(name)
    except Exception:
        mod = importlib.import_module(near.__module__)
        return getattr(mod, name)


def describe(annotation):
    """(type name, is list) of a field's annotation."""
    many = False
    t = annotation
    while True:
        origin = typing.get_origin(t)
        args = typing.get_args(t)
        if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
            t = next(a for a in args if a is not type(None))
        elif origin in (list, typing.List):
            many, t = True, args[0]
        elif origin is typing.Annotated:
            meta = args[1]
            return PRIMITIVES[type(meta).__name__], many
        else:
            break
    name = getattr(t, "__name__", str(t))
    builtin = {"bool": "boolean", "str": "string", "int": "integer", "float": "decimal", "Decimal": "decimal"}
    if name in builtin:
        return builtin[name], many
    name = name.removeprefix("abc.").removesuffix("Type") if name.endswith("Type") else name
    return name, many


def main():
    out, seen, todo = [], set(), [(t, None) for t in TYPES]
    while todo:
        name, near = todo.pop(0)
        if name in seen or name == "Resource":
            continue
        seen.add(name)
        cls = model_class(name, near)
        for field, info in cls.model_fields.items():
            extra = info.json_schema_extra or {}
            if not extra.get("element_property"):
                continue
            tname, many = describe(info.annotation)
            required = info.is_required() or extra.get("element_required", False)
            choice = extra.get("one_of_many") or "-"
            if extra.get("one_of_many_required"):
                choice += "!"
            codes = EXPANDED.get((name, field)) or extra.get("enum_values") or []
            line = f"{name} {info.alias or field} {tname} {1 if required else 0} {'*' if many else 1} {choice}"
            if codes and "+" not in codes:
                line += " " + "|".join(codes)
            out.append(line)
            if tname[0].isupper():
                todo.append((tname, cls))
    path = Path("shared/src/fhir/r5/elements.txt")
    path.write_text("\n".join(out) + "\n")
    print(f"{len(seen)} types, {len(out)} elements -> {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
