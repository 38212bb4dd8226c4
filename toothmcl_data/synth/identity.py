"""A fake but realistic patient identity, planted as PHI all over a synthetic clinical export.

Everything here is made up: names come from small embedded lists, numbers from the generator. The identity
is what a de-identification stage must remove, so :func:`phi_strings` lists every identifying string in the
exact literal forms the writers use (``"DOE^JOHN"`` in DICOM, ``"John Doe"`` in descriptions, ``"Doe_John"``
in file names …), so that a leak scanner can search raw bytes for them.

All strings are ASCII (the bad-input injector adds a Latin-1 file name on purpose, see ``synth.faults``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_GIVEN = {
    "F": _words("Anna Maria Laura Sophie Emma Julia Clara Ingrid Helen Nora Eva Lena Rosa Marta Alice Irene"),
    "M": _words("John Peter Lukas Paul David Martin Jonas Oscar Felix Henry Karl Leon Simon Victor Hugo Adam"),
}
_FAMILY = _words(
    "Doe Miller Schmidt Novak Rossi Garcia Jansen Dubois Kowalski Berg Larsen Fischer Moreau Silva Horvat "
    "Weber Costa Nielsen Keller Brennan Lindqvist Ferrari Wagner Martens Ortega Quinn Baker Hughes Vidal Sato"
)
_STREETS = ("Lindenstrasse", "Oak Avenue", "Rue des Lilas", "Via Roma", "Hauptstrasse", "Mill Lane")
_CITIES = (("Springfield", "US"), ("Northam", "GB"), ("Weststadt", "DE"), ("Belmont", "FR"), ("Havnby", "DK"))
_CLINICS = (
    "Smile Dental Center",
    "Riverside Oral Surgery",
    "City Dental Clinic",
    "Harbour Implant Institute",
)
_OCCUPATIONS = ("Teacher", "Engineer", "Nurse", "Carpenter", "Accountant", "Student", "Retired", "Chef")
_ID_PREFIXES = ("PT", "MR", "DV", "KZ", "HN")
_HISTORY = ("Penicillin allergy", "Type 2 diabetes", "Bisphosphonate therapy", "Smoker, 10 a day", "Bruxism")


def _person(rng: np.random.Generator) -> tuple[str, str]:
    """(family, given) of a clinic staff member."""
    sex = "F" if rng.random() < 0.5 else "M"
    return str(rng.choice(_FAMILY)), str(rng.choice(_GIVEN[sex]))


def _digits(rng: np.random.Generator, n: int) -> str:
    return "".join(str(int(d)) for d in rng.integers(0, 10, size=n))


def _date(rng: np.random.Generator, first: dt.date, last: dt.date) -> dt.date:
    return first + dt.timedelta(days=int(rng.integers(0, (last - first).days + 1)))


def _time(rng: np.random.Generator) -> str:
    """HHMMSS during clinic hours."""
    return f"{int(rng.integers(8, 18)):02d}{int(rng.integers(0, 60)):02d}{int(rng.integers(0, 60)):02d}"


def dicom_person(family: str, given: str) -> str:
    """A DICOM PN value as a PACS writes it: ``"DOE^JOHN"``."""
    return f"{family.upper()}^{given.upper()}"


@dataclass(frozen=True)
class Identity:
    """One made-up patient and the clinic visit that produced the export.

    Dates are ``YYYYMMDD`` strings and times ``HHMMSS`` (DICOM DA/TM). ``ios_date`` is the day of the
    intraoral scan, usually a few days after the CBCT ``study_date``.
    """

    key: str
    family: str
    given: str
    sex: str
    birth_date: str
    patient_id: str
    other_patient_id: str
    insurance_id: str
    address: str
    phone: str
    previous_family: str
    mother_birth_name: str
    occupation: str
    weight_kg: float
    height_m: float
    history: str
    institution: str
    institution_address: str
    institution_phone: str
    department: str
    referring: tuple[str, str]
    performing: tuple[str, str]
    reading: tuple[str, str]
    operators: tuple[tuple[str, str], ...]
    station_name: str
    device_serial: str
    accession: str
    study_id: str
    requested_procedure_id: str
    scheduled_step_id: str
    study_date: str
    study_time: str
    ios_date: str
    ios_time: str

    # ---- literal forms used by the writers -------------------------------------------------------------
    @property
    def dicom_name(self) -> str:
        """``"DOE^JOHN"`` (DICOM PatientName)."""
        return dicom_person(self.family, self.given)

    @property
    def other_name(self) -> str:
        """A previous name in DICOM PN form (OtherPatientNames), e.g. ``"MILLER^JOHN"``."""
        return dicom_person(self.previous_family, self.given)

    @property
    def display_name(self) -> str:
        """``"John Doe"`` (free-text descriptions, comments)."""
        return f"{self.given} {self.family}"

    @property
    def file_stem(self) -> str:
        """``"Doe_John"`` (scanner-software file names)."""
        return f"{self.family}_{self.given}"

    @property
    def pacs_folder(self) -> str:
        """``"DOE_JOHN_MR0048213"`` (PACS export folder per patient)."""
        return f"{self.family.upper()}_{self.given.upper()}_{self.patient_id}"

    @property
    def birth_date_iso(self) -> str:
        """``"1975-03-02"`` (mesh comments, planning-software headers)."""
        d = self.birth_date
        return f"{d[:4]}-{d[4:6]}-{d[6:]}"

    @property
    def age(self) -> str:
        """DICOM AS at the study date, e.g. ``"047Y"``."""
        born = dt.date(int(self.birth_date[:4]), int(self.birth_date[4:6]), int(self.birth_date[6:]))
        seen = dt.date(int(self.study_date[:4]), int(self.study_date[4:6]), int(self.study_date[6:]))
        years = seen.year - born.year - ((seen.month, seen.day) < (born.month, born.day))
        return f"{years:03d}Y"

    @property
    def staff(self) -> tuple[tuple[str, str], ...]:
        """Every clinic person named in the export, as (family, given)."""
        return (self.referring, self.performing, self.reading, *self.operators)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for name in ("referring", "performing", "reading"):
            d[name] = list(d[name])
        d["operators"] = [list(p) for p in self.operators]
        return d


def draw_identity(rng: np.random.Generator, key: str) -> Identity:
    """Draw one fake patient and clinic visit; ``key`` is the ground-truth patient key (e.g. ``"P0003"``)."""
    sex = "F" if rng.random() < 0.5 else "M"
    family = str(rng.choice(_FAMILY))
    given = str(rng.choice(_GIVEN[sex]))
    birth = _date(rng, dt.date(1940, 1, 1), dt.date(2008, 12, 31))
    study = _date(rng, dt.date(2016, 1, 1), dt.date(2024, 12, 31))
    ios = study + dt.timedelta(days=int(rng.integers(0, 21)))
    street = f"{int(rng.integers(1, 200))} {rng.choice(_STREETS)}"
    city, country = _CITIES[int(rng.integers(len(_CITIES)))]
    zip_code = _digits(rng, 5)
    clinic = str(rng.choice(_CLINICS))
    clinic_city, clinic_country = _CITIES[int(rng.integers(len(_CITIES)))]
    mother_family = str(rng.choice(_FAMILY))
    clinic_address = f"{int(rng.integers(1, 99))} {rng.choice(_STREETS)}, {clinic_city}, {clinic_country}"
    n_operators = int(rng.integers(1, 3))
    return Identity(
        key=key,
        family=family,
        given=given,
        sex=sex,
        birth_date=birth.strftime("%Y%m%d"),
        patient_id=f"{rng.choice(_ID_PREFIXES)}{_digits(rng, 7)}",
        other_patient_id=f"NHS{_digits(rng, 9)}",
        insurance_id=f"INS-{_digits(rng, 8)}",
        address=f"{street}, {zip_code} {city}, {country}",
        phone=f"+{int(rng.integers(1, 50))} {_digits(rng, 3)} {_digits(rng, 7)}",
        previous_family=str(rng.choice(_FAMILY)),
        mother_birth_name=dicom_person(mother_family, str(rng.choice(_GIVEN["F"]))),
        occupation=str(rng.choice(_OCCUPATIONS)),
        weight_kg=float(np.round(rng.uniform(45.0, 110.0), 1)),
        height_m=float(np.round(rng.uniform(1.50, 1.95), 2)),
        history=str(rng.choice(_HISTORY)),
        institution=clinic,
        institution_address=clinic_address,
        institution_phone=f"+{int(rng.integers(1, 50))}-{_digits(rng, 3)}-{_digits(rng, 6)}",
        department="Oral and Maxillofacial Radiology",
        referring=_person(rng),
        performing=_person(rng),
        reading=_person(rng),
        operators=tuple(_person(rng) for _ in range(n_operators)),
        station_name=f"CBCT{_digits(rng, 2)}-{clinic.split()[0].upper()[:6]}",
        device_serial=f"DVX{_digits(rng, 8)}",
        accession=f"A{_digits(rng, 9)}",
        study_id=f"ST{_digits(rng, 7)}",
        requested_procedure_id=f"RP{_digits(rng, 7)}",
        scheduled_step_id=f"SPS{_digits(rng, 7)}",
        study_date=study.strftime("%Y%m%d"),
        study_time=_time(rng),
        ios_date=ios.strftime("%Y%m%d"),
        ios_time=_time(rng),
    )


def study_description(identity: Identity) -> str:
    """StudyDescription as a clinic types it, naming the patient."""
    return f"CBCT implant planning {identity.display_name}"


def series_description(identity: Identity, spacing_mm: float = 0.4) -> str:
    """SeriesDescription naming the patient and the voxel size."""
    return f"Dental volume {identity.dicom_name} {spacing_mm:.2f}mm"


def mesh_comments(identity: Identity, jaw: str) -> tuple[str, ...]:
    """Comment lines an intraoral-scanner export writes into PLY/OBJ files."""
    return (
        f"Patient: {identity.display_name}",
        f"PatientID: {identity.patient_id}",
        f"DOB: {identity.birth_date_iso}",
        f"Clinic: {identity.institution}",
        f"Scanned by {dicom_person(*identity.operators[0])} on {identity.ios_date}",
        f"Jaw: {jaw}",
    )


def stl_header(identity: Identity, jaw: str) -> str:
    """The 80-byte STL header a scanner writes (ASCII, fits in 80 bytes)."""
    return f"{identity.file_stem} {identity.patient_id} {identity.ios_date} {jaw}"[:80]


def phi_strings(identity: Identity) -> tuple[str, ...]:
    """Every identifying string planted for ``identity``, sorted, in the literal forms the writers use.

    Planted values too short or too generic to identify anyone or to search for without false hits (sex, age,
    times of day, weight, height, department, occupation, a family name alone) are planted but not listed.
    UIDs are drawn by the DICOM writer and listed by the drop writer. IDs carry letters so that a literal
    search does not hit digit runs inside ASCII mesh coordinates; 8-digit ``YYYYMMDD`` dates rarely can.
    """
    values = {
        identity.dicom_name,
        identity.display_name,
        identity.file_stem,
        identity.pacs_folder,
        identity.patient_id,
        identity.other_patient_id,
        identity.insurance_id,
        identity.birth_date,
        identity.birth_date_iso,
        identity.address,
        identity.phone,
        identity.mother_birth_name,
        identity.other_name,
        identity.institution_phone,
        identity.scheduled_step_id,
        identity.institution,
        identity.institution_address,
        identity.station_name,
        identity.device_serial,
        identity.accession,
        identity.study_id,
        identity.requested_procedure_id,
        identity.study_date,
        identity.ios_date,
        identity.history,
    }
    values.update(dicom_person(*p) for p in identity.staff)
    return tuple(sorted(values))
