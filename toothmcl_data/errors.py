"""The toothmcl error hierarchy.

Every error is a :class:`ToothmclError` and also the built-in a caller would expect (``ValueError``,
``FileNotFoundError`` …), so ``except ValueError`` keeps working. Messages say what went wrong, in which file or
case, what was expected versus found, and how to fix it.
"""

from __future__ import annotations


class ToothmclError(Exception):
    """Base class of every error raised by toothmcl."""


class InputError(ToothmclError, ValueError):
    """An input file or argument is not what the stage expects."""


class InputNotFoundError(ToothmclError, FileNotFoundError):
    """A path or URL given as input does not exist."""


class UnsafeInputError(InputError):
    """A drop holds an entry that must not be read: a path leaving the drop (``..``, absolute, a link), a device."""


class SeriesError(InputError):
    """A DICOM series cannot be assembled into a volume (missing slices, mixed geometry …)."""


class VolumeError(InputError):
    """A volume file (NIfTI, MHA, NRRD, DICOM) cannot be read or has unusable geometry."""


class MeshError(InputError):
    """A mesh file is empty, corrupt, or inconsistent with its label sidecar."""


class LabelSchemeError(ToothmclError, ValueError):
    """A tooth code is unknown to its label scheme, or a scheme file is malformed."""


class ConfigError(ToothmclError, ValueError):
    """A configuration value is out of range or inconsistent."""


class DeidError(ToothmclError, ValueError):
    """De-identification cannot proceed (bad key, unsafe output location, an identity conflict it must not guess)."""


class RegistrationError(ToothmclError, ValueError):
    """A CBCT and an intraoral scan cannot be registered (no tooth surface, no overlap, bad geometry)."""


class StoreError(ToothmclError, ValueError):
    """A dataset store cannot be opened or written, or a record does not fit its layout."""


class VersionNotFoundError(StoreError, LookupError):
    """A store has no version, tag or snapshot by the name asked for."""


class DependencyError(ToothmclError, ImportError):
    """An optional package (an extra such as ``models``) is needed for this call but is not installed."""
