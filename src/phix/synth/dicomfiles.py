"""DICOM Part 10 files for a planned study (pydicom), patient module from the sending
hospital's record: its MRN as PatientID, the name as the clerk recorded it."""

from __future__ import annotations

import io
import random
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian

from phix.identity import systems
from phix.synth.ids import dicom_uid
from phix.synth.imaging import SOP_CLASSES, Series, Study, description, dicom_person_name, pixel_data

IMPLEMENTATION_CLASS_UID = dicom_uid("phix", "synth", "implementation", 1)
IMPLEMENTATION_VERSION = "PHIX_SYNTH_1"
_SHAPE = {"CT": (64, 64, 12), "MR": (64, 64, 12), "DX": (96, 96, 12), "US": (64, 64, 8)}


def study_dir(root: Path, study: Study) -> Path:
    return root / study.order.record.inst.code / study.accession


def _base(study: Study, series: Series) -> Dataset:
    order = study.order
    rec = order.record
    recorded = rec.recorded
    inst = rec.inst
    ds = Dataset()
    ds.SpecificCharacterSet = study.charset
    ds.SOPClassUID = SOP_CLASSES[study.modality][0]
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = ds.AcquisitionDate = order.when.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = order.when.strftime("%H%M%S")
    ds.AccessionNumber = study.accession
    ds.Modality = study.modality
    ds.Manufacturer = "PHIX-SYNTH"
    ds.InstitutionName = inst.name
    ds.ReferringPhysicianName = dicom_person_name(order.requester.family, order.requester.given)
    ds.StationName = f"{inst.code[:10].upper()}{study.modality}1"
    ds.StudyDescription = description(study)
    ds.SeriesDescription = series.description
    ds.ManufacturerModelName = f"SYNTH-{study.modality}"
    if recorded.name_use == "official":
        ds.PatientName = dicom_person_name(recorded.family, recorded.given)
    else:
        ds.PatientName = f"={recorded.text}"
    ds.PatientID = rec.mrn
    ds.IssuerOfPatientID = inst.code
    qualifiers = Dataset()
    qualifiers.UniversalEntityID = rec.mrn_system
    qualifiers.UniversalEntityIDType = "URI"
    ds.IssuerOfPatientIDQualifiersSequence = Sequence([qualifiers])
    ds.PatientBirthDate = recorded.birth.strftime("%Y%m%d")
    ds.PatientSex = "M" if recorded.sex == "male" else "F"
    if recorded.id_value:
        other = Dataset()
        other.PatientID = recorded.id_value
        other.IssuerOfPatientID = systems.RESIDENT_ID.removeprefix("urn:oid:")
        other.TypeOfPatientID = "TEXT"
        ds.OtherPatientIDsSequence = Sequence([other])
    ds.BodyPartExamined = study.body_part
    ds.StudyInstanceUID = study.uid
    ds.SeriesInstanceUID = series.uid
    ds.StudyID = study.accession[-8:]
    ds.SeriesNumber = series.number
    return ds


def _modality_module(ds: Dataset, study: Study, series: Series, number: int) -> None:
    m = study.modality
    if m in ("CT", "MR"):
        ds.FrameOfReferenceUID = dicom_uid(study.uid, "frame")
        ds.PositionReferenceIndicator = ""
        ds.PatientPosition = "HFS"
        ds.SliceThickness = "5"
        ds.PixelSpacing = ["5", "5"]
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.ImagePositionPatient = ["-160", "-160", str(number * 5)]
        ds.SliceLocation = str(number * 5)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    if m == "CT":
        ds.KVP = "120"
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "-1024", "1", "HU"
        ds.WindowCenter, ds.WindowWidth = "40", "400"
        ds.AcquisitionNumber = 1
    elif m == "MR":
        ds.ScanningSequence, ds.SequenceVariant, ds.ScanOptions = "SE", "NONE", ""
        ds.MRAcquisitionType = "2D"
        ds.RepetitionTime, ds.EchoTime = ("500", "15") if series.description == "T1WI" else ("4000", "100")
        ds.EchoTrainLength = 1
        ds.MagneticFieldStrength = "1.5"
        ds.ImagedNucleus = "1H"
    elif m == "DX":
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        ds.PresentationIntentType = "FOR PRESENTATION"
        ds.DetectorType = "DIRECT"
        ds.ViewPosition = "PA" if series.number == 1 else "LL"
        ds.PatientOrientation = ["L", "F"]
        ds.KVP = "110"
        ds.ImagerPixelSpacing = ["0.5", "0.5"]
        ds.PixelIntensityRelationship = "LOG"
        ds.PixelIntensityRelationshipSign = 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "0", "1", "US"
        ds.WindowCenter, ds.WindowWidth = "2048", "4096"
        ds.BurnedInAnnotation = "NO"
    else:
        ds.ImageType = ["ORIGINAL", "PRIMARY", "ABDOMINAL"]
        ds.PatientOrientation = ""


def datasets(study: Study) -> list[tuple[Path, Dataset]]:
    """Every instance of the study with its path relative to the study folder."""
    rng = random.Random(f"pixels/{study.uid}")
    result = []
    rows, cols, bits = _SHAPE[study.modality]
    for series in study.series:
        for inst in series.instances:
            ds = _base(study, series)
            ds.SOPInstanceUID = inst.uid
            ds.InstanceNumber = inst.number
            _modality_module(ds, study, series, inst.number)
            ds.SamplesPerPixel = 1
            ds.PhotometricInterpretation = "MONOCHROME2"
            ds.Rows, ds.Columns = rows, cols
            ds.BitsAllocated = 16 if bits > 8 else 8
            ds.BitsStored = bits
            ds.HighBit = bits - 1
            ds.PixelRepresentation = 0
            ds.LossyImageCompression = "00"
            ds.PixelData = pixel_data(rows, cols, bits, rng, inst.number)
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = ds.SOPClassUID
            meta.MediaStorageSOPInstanceUID = UID(inst.uid)
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
            meta.ImplementationVersionName = IMPLEMENTATION_VERSION
            ds.file_meta = meta
            name = Path(f"{series.number:02d}-{study.modality}") / f"{inst.number:03d}.dcm"
            result.append((name, ds))
    return result


def encode(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def write_study(root: Path, study: Study) -> int:
    """Write the study's files under ``root/<org>/<accession>/``; returns the bytes written."""
    folder = study_dir(root, study)
    total = 0
    for name, ds in datasets(study):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        data = encode(ds)
        path.write_bytes(data)
        total += len(data)
    return total
