"""DICOM gateway: receive (C-STORE, STOW-RS), index, publish (QIDO-RS, WADO-RS, C-FIND, FHIR
ImagingStudy) and route studies to the reading sites. See docs/dicom-conformance.md."""
