"""The code version: the package version plus a stable hash of the library's source."""

from __future__ import annotations

import re

from toothmcl_data import __version__
from toothmcl_data.provenance import code_version


def test_code_version_is_the_package_version_and_a_source_hash() -> None:
    version = code_version()
    assert re.fullmatch(re.escape(__version__) + r"\+[0-9a-f]{12}", version)
    code_version.cache_clear()
    assert code_version() == version  # recomputed from the same files: the same hash
