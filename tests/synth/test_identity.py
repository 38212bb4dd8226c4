"""Planted identity: drawn deterministically, written into many DICOM attributes, listed for a leak scanner."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset

from toothmcl_data.synth.dicom import SeriesUIDs, identity_header
from toothmcl_data.synth.identity import (
    Identity,
    draw_identity,
    mesh_comments,
    phi_strings,
    stl_header,
    study_description,
)


def _identity(seed: int = 1) -> Identity:
    return draw_identity(np.random.default_rng(seed), "P0001")


def _phi_elements(ds: Dataset, phi: tuple[str, ...]) -> list[tuple[str, bool, bool]]:
    """(keyword or tag, inside a sequence?, private?) of every element whose text contains a PHI string."""
    hits: list[tuple[str, bool, bool]] = []

    def walk(d: Dataset, nested: bool) -> None:
        for elem in d:
            if elem.VR == "SQ":
                for item in elem.value:
                    walk(item, True)
                continue
            text = str(elem.value)
            if any(value in text for value in phi):
                hits.append((elem.keyword or str(elem.tag), nested, elem.tag.is_private))

    walk(ds, False)
    return hits


def test_same_generator_state_same_identity() -> None:
    assert _identity(5) == _identity(5)
    assert _identity(5) != _identity(6)
    assert _identity(5).key == "P0001"


def test_literal_forms() -> None:
    ident = _identity(3)
    assert ident.dicom_name == f"{ident.family.upper()}^{ident.given.upper()}"
    assert ident.display_name == f"{ident.given} {ident.family}"
    assert ident.file_stem == f"{ident.family}_{ident.given}"
    assert ident.pacs_folder.endswith(f"_{ident.patient_id}")
    assert ident.birth_date_iso.replace("-", "") == ident.birth_date
    assert re.fullmatch(r"\d{3}Y", ident.age)


def test_phi_strings_list_every_searchable_form() -> None:
    ident = _identity(2)
    phi = phi_strings(ident)
    for value in (
        ident.dicom_name,
        ident.display_name,
        ident.file_stem,
        ident.pacs_folder,
        ident.patient_id,
        ident.birth_date,
        ident.birth_date_iso,
        ident.address,
        ident.phone,
        ident.institution,
        ident.accession,
        ident.device_serial,
        ident.station_name,
    ):
        assert value in phi
    assert list(phi) == sorted(set(phi))
    assert min(len(v) for v in phi) >= 7  # nothing short enough to hit by chance
    assert ident.sex not in phi


def test_header_plants_phi_in_many_attributes_nested_and_private() -> None:
    ident = _identity(4)
    uids = SeriesUIDs.draw(np.random.default_rng(0))
    ds = identity_header(ident, uids, series_number=1, description="Dental volume")
    hits = _phi_elements(ds, (*phi_strings(ident), uids.study, uids.referenced_study))
    top_level = {name for name, nested, private in hits if not nested and not private}
    assert len(top_level) >= 20, sorted(top_level)
    for keyword in (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientAddress",
        "PatientTelephoneNumbers",
        "OtherPatientIDs",
        "InstitutionName",
        "ReferringPhysicianName",
        "OperatorsName",
        "StationName",
        "DeviceSerialNumber",
        "AccessionNumber",
        "StudyDescription",
        "PatientComments",
        "AdditionalPatientHistory",
        "StudyInstanceUID",
    ):
        assert keyword in top_level
    nested = {name for name, is_nested, _ in hits if is_nested}
    assert {"RequestedProcedureDescription", "CodeMeaning", "ReferencedSOPInstanceUID", "PatientID"} <= nested
    assert sum(private for _, _, private in hits) >= 4
    assert ds.get_private_item(0x0009, 0x01, "DENTAVOX PATIENT 1.0").value == ident.display_name


def test_mesh_text_carries_phi() -> None:
    ident = _identity(7)
    comments = "\n".join(mesh_comments(ident, "upper"))
    assert ident.display_name in comments
    assert ident.patient_id in comments
    assert ident.birth_date_iso in comments
    header = stl_header(ident, "UpperJaw")
    assert len(header.encode("ascii")) <= 80
    assert header.startswith(f"{ident.file_stem} {ident.patient_id}")
    assert ident.display_name in study_description(ident)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_identity_values_are_valid_dicom(seed: int) -> None:
    ident = draw_identity(np.random.default_rng(seed), "P0000")
    assert re.fullmatch(r"[A-Z]+\^[A-Z]+", ident.dicom_name)
    for value in (ident.study_date, ident.birth_date, ident.ios_date):
        assert re.fullmatch(r"(19|20)\d{6}", value)
    assert ident.birth_date < ident.study_date <= ident.ios_date
    assert re.fullmatch(r"([01]\d|2[0-3])[0-5]\d[0-5]\d", ident.study_time)
    assert len(ident.station_name) <= 16  # SH
    assert all(len(v) <= 64 for v in (ident.address, ident.institution_address))  # LO
    for value in phi_strings(ident):
        value.encode("ascii")  # raises on non-ASCII


@pytest.mark.parametrize("jaw", ["upper", "lower"])
def test_comments_name_the_jaw(jaw: str) -> None:
    assert mesh_comments(_identity(), jaw)[-1] == f"Jaw: {jaw}"
