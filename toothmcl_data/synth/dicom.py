"""Write a synthetic CBCT as a clinic's DICOM series: one CT Image Storage file per slice, PHI everywhere.

Geometry follows :mod:`toothmcl_data.io.dicom` exactly in reverse: for ``Volume.affine`` with columns
``a_i, a_j, a_k`` (LPS mm per voxel step), ImageOrientationPatient is ``[a_i/|a_i|, a_j/|a_j|]``, PixelSpacing
``[|a_j|, |a_i|]`` (row spacing, column spacing), slice ``k`` sits at ``IPP = affine @ (0, 0, k, 1)`` and its
pixel array ``(rows, cols)`` is ``array[:, :, k].T``. The reader sorts slices along ``X × Y``, so a volume
whose ``a_k`` points that way (any right-handed affine) reads back with the same array and affine.

Pixels are stored unsigned (``value − intercept`` with RescaleIntercept ≤ −1024, slope 1): a reader that
forgets Rescale gets values off by ≥ 1024. Headers carry the identity across many attributes of DICOM PS3.15
Table E.1-1, nested sequences and private tags, as a real clinic export does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import UID, ExplicitVRLittleEndian
from pydicom.valuerep import format_number_as_ds

from toothmcl_data.errors import InputError
from toothmcl_data.synth.identity import Identity, dicom_person, series_description, study_description
from toothmcl_data.types import Volume

log = logging.getLogger(__name__)

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
_STUDY_COMPONENT = "1.2.840.10008.3.1.2.3.1"  # Detached Study Management (retired; still seen in referenced studies)
_IMPLEMENTATION_UID = "2.25.240718557315212117690093286549925263191"
PRIVATE_CREATOR_PATIENT = "DENTAVOX PATIENT 1.0"
PRIVATE_CREATOR_ACQ = "DENTAVOX ACQ 1.0"

NameStyle = Literal["IM", "IM.dcm", "uid.dcm"]
"""Slice file names: ``IM00001`` (no extension), ``IM00001.dcm``, or ``CT.<SOPInstanceUID>.dcm``."""
NAME_STYLES: tuple[NameStyle, ...] = ("IM", "IM.dcm", "uid.dcm")


def draw_uid(rng: np.random.Generator) -> str:
    """A random UID ``2.25.<128-bit integer>`` (PS3.5 B.2), drawn from ``rng``."""
    hi, lo = (int(v) for v in rng.integers(0, 2**63, size=2, dtype=np.int64))
    return f"2.25.{hi << 64 | lo << 1 | 1}"


def _ds(value: float) -> str:
    return format_number_as_ds(float(value))


def _name(style: NameStyle, instance: int, sop_uid: str) -> str:
    if style == "IM":
        return f"IM{instance:05d}"
    if style == "IM.dcm":
        return f"IM{instance:05d}.dcm"
    return f"CT.{sop_uid}.dcm"


@dataclass(frozen=True)
class SeriesUIDs:
    """UIDs shared by the slices of one series (all ``2.25.<int>``)."""

    study: str
    series: str
    frame_of_reference: str
    referenced_study: str

    @classmethod
    def draw(cls, rng: np.random.Generator, *, study: str | None = None, frame: str | None = None) -> SeriesUIDs:
        return cls(
            study=study or draw_uid(rng),
            series=draw_uid(rng),
            frame_of_reference=frame or draw_uid(rng),
            referenced_study=draw_uid(rng),
        )


@dataclass(frozen=True)
class WrittenSeries:
    """What :func:`write_series` wrote: slice files in order of ``k`` and every UID it planted."""

    paths: tuple[Path, ...]
    uids: SeriesUIDs
    sop_uids: tuple[str, ...]
    rescale_intercept: int

    @property
    def all_uids(self) -> tuple[str, ...]:
        u = self.uids
        return (u.study, u.series, u.frame_of_reference, u.referenced_study, *self.sop_uids)


def _code_item(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def identity_header(identity: Identity, uids: SeriesUIDs, *, series_number: int, description: str) -> Dataset:
    """The per-series part of a CT header: patient, study, equipment and request data, full of PHI.

    Planted PS3.15 E.1-1 attributes include names, IDs, other IDs (and their sequence), birth date/time,
    address, telephone, mother's birth name, occupation, comments, history, institution, physicians,
    operators, station, device serial, accession, study ID, dates/times, UIDs and free-text descriptions; plus
    RequestAttributesSequence, ReferencedStudySequence and ProcedureCodeSequence items naming the patient and
    private blocks (0009,xx) and (0019,xx) holding the name, ID and birth date.
    """
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = identity.study_date
    ds.InstanceCreationDate = identity.study_date
    ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = identity.study_time
    ds.AcquisitionDateTime = identity.study_date + identity.study_time
    ds.AccessionNumber = identity.accession
    ds.Modality = "CT"
    ds.Manufacturer = "Dentavox Imaging"
    ds.InstitutionName = identity.institution
    ds.InstitutionAddress = identity.institution_address
    ds.ReferringPhysicianName = dicom_person(*identity.referring)
    ds.ReferringPhysicianAddress = identity.institution_address
    ds.ReferringPhysicianTelephoneNumbers = identity.institution_phone
    ds.StationName = identity.station_name
    ds.StudyDescription = study_description(identity)
    ds.SeriesDescription = description
    ds.InstitutionalDepartmentName = identity.department
    ds.PhysiciansOfRecord = dicom_person(*identity.referring)
    ds.PerformingPhysicianName = dicom_person(*identity.performing)
    ds.NameOfPhysiciansReadingStudy = dicom_person(*identity.reading)
    ds.OperatorsName = [dicom_person(*p) for p in identity.operators]
    ds.ManufacturerModelName = "DVX-3D Cone Beam"
    ds.ProcedureCodeSequence = DicomSequence([_code_item("D0367", "CDT", f"CBCT both jaws {identity.dicom_name}")])
    ref = Dataset()
    ref.ReferencedSOPClassUID = _STUDY_COMPONENT
    ref.ReferencedSOPInstanceUID = uids.referenced_study
    ds.ReferencedStudySequence = DicomSequence([ref])
    ds.PatientName = identity.dicom_name
    ds.PatientID = identity.patient_id
    ds.IssuerOfPatientID = identity.institution
    ds.PatientBirthDate = identity.birth_date
    ds.PatientBirthTime = "000000"
    ds.PatientSex = identity.sex
    ds.OtherPatientIDs = identity.other_patient_id
    other = Dataset()
    other.PatientID = identity.other_patient_id
    other.IssuerOfPatientID = "National Health Service"
    other.TypeOfPatientID = "TEXT"
    insurance = Dataset()
    insurance.PatientID = identity.insurance_id
    insurance.IssuerOfPatientID = "Dental Insurance"
    insurance.TypeOfPatientID = "TEXT"
    ds.OtherPatientIDsSequence = DicomSequence([other, insurance])
    ds.OtherPatientNames = identity.other_name
    ds.PatientAge = identity.age
    ds.PatientSize = _ds(identity.height_m)
    ds.PatientWeight = _ds(identity.weight_kg)
    ds.PatientAddress = identity.address
    ds.PatientMotherBirthName = identity.mother_birth_name
    ds.PatientTelephoneNumbers = identity.phone
    ds.Occupation = identity.occupation
    ds.AdditionalPatientHistory = f"{identity.history}; referred by {dicom_person(*identity.referring)}"
    ds.PatientComments = f"{identity.display_name}, born {identity.birth_date_iso}, tel {identity.phone}"
    ds.DeviceSerialNumber = identity.device_serial
    ds.SoftwareVersions = "DVX Capture 4.2.1"
    ds.ProtocolName = f"Full arch {identity.dicom_name}"
    ds.StudyInstanceUID = uids.study
    ds.SeriesInstanceUID = uids.series
    ds.StudyID = identity.study_id
    ds.SeriesNumber = series_number
    ds.AcquisitionNumber = 1
    ds.FrameOfReferenceUID = uids.frame_of_reference
    ds.PositionReferenceIndicator = ""
    ds.PatientPosition = "HFS"
    ds.RequestingPhysician = dicom_person(*identity.referring)
    ds.RequestedProcedureDescription = f"CBCT for implant planning, patient {identity.display_name}"
    request = Dataset()
    request.RequestedProcedureID = identity.requested_procedure_id
    request.ScheduledProcedureStepID = identity.scheduled_step_id
    request.RequestedProcedureDescription = f"CBCT {identity.display_name} ({identity.patient_id})"
    request.ScheduledProcedureStepDescription = f"Scan {identity.dicom_name}"
    request.AccessionNumber = identity.accession
    ds.RequestAttributesSequence = DicomSequence([request])
    ds.PerformedProcedureStepStartDate = identity.study_date
    ds.PerformedProcedureStepStartTime = identity.study_time
    ds.PerformedProcedureStepID = identity.requested_procedure_id
    ds.PerformedProcedureStepDescription = f"CBCT {identity.dicom_name}"
    ds.ImageComments = f"Pre-op scan of {identity.display_name}"
    block = ds.private_block(0x0009, PRIVATE_CREATOR_PATIENT, create=True)
    block.add_new(0x01, "LO", identity.display_name)
    block.add_new(0x02, "LO", identity.patient_id)
    block.add_new(0x03, "DA", identity.birth_date)
    block.add_new(0x04, "LO", identity.address)
    acq = ds.private_block(0x0019, PRIVATE_CREATOR_ACQ, create=True)
    acq.add_new(0x10, "LO", f"{identity.dicom_name} {identity.patient_id}")
    acq.add_new(0x11, "SH", identity.station_name)
    acq.add_new(0x12, "LO", identity.device_serial)
    ds.KVP = "90"
    ds.ExposureTime = "14"
    ds.XRayTubeCurrent = "8"
    return ds


def _geometry(volume: Volume) -> tuple[NDArray[np.float64], tuple[float, float], NDArray[np.float64], float]:
    """(IOP (6,), PixelSpacing (row, col) mm, unit normal X × Y, slice step along the normal in mm)."""
    a = volume.affine
    col_i, col_j, col_k = a[:3, 0], a[:3, 1], a[:3, 2]
    x_dir = col_i / np.linalg.norm(col_i)
    y_dir = col_j / np.linalg.norm(col_j)
    if abs(float(x_dir @ y_dir)) > 1e-6:
        raise InputError(
            f"cannot write a DICOM slice series: the affine's i and j axes are not orthogonal "
            f"(cos = {float(x_dir @ y_dir):.3g}); resample the volume first"
        )
    normal = np.cross(x_dir, y_dir)
    return (
        np.concatenate([x_dir, y_dir]),
        (float(np.linalg.norm(col_j)), float(np.linalg.norm(col_i))),
        normal,
        float(col_k @ normal),
    )


def write_series(
    folder: Path,
    volume: Volume,
    identity: Identity,
    rng: np.random.Generator,
    *,
    style: NameStyle = "IM",
    first_instance: int = 1,
    series_number: int = 1,
    description: str | None = None,
    uids: SeriesUIDs | None = None,
) -> WrittenSeries:
    """Write ``volume`` ((I, J, K) int16 values after Rescale, LPS affine) as one file per slice ``k``.

    Files go into ``folder`` (created) named by ``style``; InstanceNumber runs from ``first_instance``. UIDs
    come from ``uids`` or are drawn from ``rng``. Returns the paths in order of ``k`` and the UIDs planted.
    Byte-identical for equal inputs and generator state (no clocks are read).
    """
    values = np.asarray(volume.array)
    if not np.issubdtype(values.dtype, np.integer):
        raise InputError(f"DICOM series for {folder}: expected an integer volume, got dtype {values.dtype}")
    iop, pixel_spacing, normal, step = _geometry(volume)
    intercept = int(min(-1024, int(values.min())))
    stored = (values.astype(np.int64) - intercept).astype(np.uint16)
    uids = uids or SeriesUIDs.draw(rng)
    ds = identity_header(
        identity, uids, series_number=series_number, description=description or series_description(identity)
    )
    ds.ImageOrientationPatient = [_ds(v) for v in iop]
    ds.PixelSpacing = [_ds(v) for v in pixel_spacing]
    ds.SliceThickness = ds.SpacingBetweenSlices = _ds(abs(step))
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = volume.shape[1], volume.shape[0]
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = str(intercept)
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.WindowCenter = "1000"
    ds.WindowWidth = "4000"
    folder.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    sop_uids: list[str] = []
    for k in range(volume.shape[2]):
        sop = draw_uid(rng)
        instance = first_instance + k
        position = volume.affine @ np.array([0.0, 0.0, float(k), 1.0])
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = UID(CT_IMAGE_STORAGE)
        meta.MediaStorageSOPInstanceUID = UID(sop)
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = UID(_IMPLEMENTATION_UID)
        meta.ImplementationVersionName = "DVX_CAPTURE_42"
        ds.file_meta = meta
        ds.SOPInstanceUID = sop
        ds.InstanceNumber = instance
        ds.ImagePositionPatient = [_ds(v) for v in position[:3]]
        ds.SliceLocation = _ds(float(position[:3] @ normal))
        ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).astype("<u2").tobytes()
        path = folder / _name(style, instance, sop)
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
        sop_uids.append(sop)
    log.debug("wrote %d slices to %s", len(paths), folder)
    return WrittenSeries(paths=tuple(paths), uids=uids, sop_uids=tuple(sop_uids), rescale_intercept=intercept)
