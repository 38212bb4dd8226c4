"""The code version recorded in every published version and used in cache keys: the package version plus a
hash of the library's own source files, so any code change invalidates cached results."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from toothmcl_data import __version__


@lru_cache(maxsize=1)
def code_version() -> str:
    """``"<version>+<first 12 hex of sha256 over toothmcl_data/**/*.py and catalogs>"``."""
    package = Path(__file__).parent
    digest = hashlib.sha256()
    roots = [package, package / "catalogs", package.parent / "catalogs"]
    files = sorted({p for root in roots if root.is_dir() for p in root.rglob("*") if p.suffix in (".py", ".yaml")})
    for path in files:
        digest.update(path.relative_to(package.parent).as_posix().encode())
        digest.update(path.read_bytes())
    return f"{__version__}+{digest.hexdigest()[:12]}"
