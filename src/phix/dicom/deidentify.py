"""De-identification for second-opinion routes: a subset of the DICOM PS3.15 Annex E Basic
Application Confidentiality Profile, with the Retain Longitudinal Temporal Information (full
dates) option so that a reader can still compare studies over time.

What it does, per the action codes of PS3.15 Table E.1-1:

* **U** (UIDs: study, series, SOP instance, frame of reference, referenced SOP instances in any
  sequence, media storage SOP instance): replaced by ``2.25.<keyed hash>`` -- the same original
  always maps to the same pseudonym, so a study de-identified twice is the *same* study at the
  site (idempotent delivery) and references between instances stay consistent;
* **Z / D** (PatientID, PatientName, AccessionNumber, StudyID, ReferringPhysicianName ...):
  replaced by a pseudonym or emptied;
* **X** (addresses, telephone numbers, other patient ids, institution and physician names,
  device identity, free-text comments, request attributes ...): removed;
* private attributes: removed (the profile's default);
* adds PatientIdentityRemoved = YES, DeidentificationMethod and its code sequence
  (DCM 113100 Basic Application Confidentiality Profile, 113106 Retain Longitudinal Temporal
  Information Full Dates Option).

Not covered (document before use): burned-in annotations in pixel data (instances whose
BurnedInAnnotation is YES are refused), structured-report content, and overlays and curves.
"""

from __future__ import annotations

import hashlib
import hmac
import io

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence

METHOD = "PS3.15 Basic Profile (phix subset), Retain Full Dates"

# Replaced by a keyed pseudonym (Z/D): keyword -> prefix
_PSEUDONYMS = {"PatientID": "ANON-", "AccessionNumber": "A", "StudyID": "S"}
# Emptied (Z)
_EMPTY = ("ReferringPhysicianName", "PatientBirthDate", "PatientSex", "ContentCreatorName")
# Removed (X)
_REMOVE = (
    "AdditionalPatientHistory", "AdmittingDiagnosesDescription", "Allergies", "CountryOfResidence",
    "CurrentPatientLocation", "DerivationDescription", "DeviceSerialNumber", "EthnicGroup",
    "ImageComments", "InstitutionAddress", "InstitutionName", "InstitutionalDepartmentName",
    "IssuerOfPatientID", "IssuerOfPatientIDQualifiersSequence", "MedicalRecordLocator",
    "MilitaryRank", "NameOfPhysiciansReadingStudy", "Occupation", "OperatorsName",
    "OtherPatientIDs", "OtherPatientIDsSequence", "OtherPatientNames", "PatientAddress",
    "PatientAge", "PatientBirthName", "PatientBirthTime", "PatientComments",
    "PatientInsurancePlanCodeSequence",
    "PatientMotherBirthName", "PatientReligiousPreference", "PatientSize", "PatientTelephoneNumbers",
    "PatientWeight", "PerformedProcedureStepDescription", "PerformingPhysicianName",
    "PhysiciansOfRecord", "ReferringPhysicianAddress", "ReferringPhysicianTelephoneNumbers",
    "RequestAttributesSequence", "RequestingPhysician", "RequestingService", "ResponsiblePerson",
    "ScheduledProcedureStepDescription", "StationName", "StudyComments", "TextComments",
    "IssuerOfAccessionNumberSequence", "PersonName", "ProtocolName",
)  # fmt: skip
# Replaced consistently (U)
_UIDS = frozenset(
    {
        "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID",
        "ReferencedSOPInstanceUID", "ReferencedFrameOfReferenceUID", "InstanceCreatorUID",
        "IrradiationEventUID", "ConcatenationUID", "DimensionOrganizationUID",
        "SynchronizationFrameOfReferenceUID",
        "StorageMediaFileSetUID", "TargetUID", "MediaStorageSOPInstanceUID", "UID",
    }
)  # fmt: skip


class NotDeidentifiable(ValueError):
    pass


class Deidentifier:
    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("a de-identification secret is required")
        self._key = secret.encode()

    def _digest(self, value: str) -> bytes:
        return hmac.new(self._key, value.encode(), hashlib.sha256).digest()

    def uid(self, original: str) -> str:
        """A ``2.25`` UID derived from the original (PS3.5 B.2), the same every time."""
        return "2.25." + str(int.from_bytes(self._digest("uid|" + original)[:16], "big"))

    def pseudonym(self, kind: str, original: str) -> str:
        return self._digest(f"{kind}|{original}").hex()[:12].upper()

    def _walk(self, ds: Dataset) -> None:
        for element in list(ds):
            if element.tag.is_private:
                del ds[element.tag]
                continue
            keyword = element.keyword
            if element.VR == "SQ":
                for item in element.value or []:
                    self._walk(item)
                continue
            if keyword in _UIDS and element.value:
                if isinstance(element.value, (list, pydicom.multival.MultiValue)):
                    element.value = [self.uid(str(v)) for v in element.value]
                else:
                    element.value = self.uid(str(element.value))

    def apply(self, ds: Dataset) -> Dataset:
        """De-identify in place (and return) a data set with its file meta."""
        if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
            raise NotDeidentifiable("burned-in annotation: pixel data would need to be cleaned")
        name_seed = str(ds.get("PatientID", "")) + "|" + str(ds.get("PatientName", ""))
        for keyword in _REMOVE:
            if keyword in ds:
                delattr(ds, keyword)
        for keyword in _EMPTY:
            if keyword in ds:
                ds[keyword].value = ""
        for keyword, prefix in _PSEUDONYMS.items():
            if ds.get(keyword):
                ds[keyword].value = prefix + self.pseudonym(keyword, str(ds[keyword].value))[:14]
        if "PatientName" in ds:
            ds.PatientName = "ANON^" + self.pseudonym("name", name_seed)
        self._walk(ds)
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = METHOD
        codes = []
        for value, meaning in (
            ("113100", "Basic Application Confidentiality Profile"),
            ("113106", "Retain Longitudinal Temporal Information Full Dates Option"),
        ):
            item = Dataset()
            item.CodeValue = value
            item.CodingSchemeDesignator = "DCM"
            item.CodeMeaning = meaning
            codes.append(item)
        ds.DeidentificationMethodCodeSequence = Sequence(codes)
        ds.SpecificCharacterSet = ds.get("SpecificCharacterSet") or "ISO_IR 192"
        meta = getattr(ds, "file_meta", None)
        if isinstance(meta, FileMetaDataset) and "SOPInstanceUID" in ds:
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        return ds

    def apply_bytes(self, data: bytes) -> bytes:
        ds = pydicom.dcmread(io.BytesIO(data))
        self.apply(ds)
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=True)
        return out.getvalue()
