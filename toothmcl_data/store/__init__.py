"""The versioned dataset store: Zarr v3 arrays + Parquet catalog tables, one Icechunk commit per version.

``publish`` writes a version (incrementally against the latest), ``open_version`` reads one; ``versions``
manages them (list, tag, diff, verify, checkout, gc). See ``layout`` for what lives where.
"""

from toothmcl_data.store.layout import TABLES, LayoutConfig
from toothmcl_data.store.reader import PairArrays, VersionReader, open_version
from toothmcl_data.store.records import CaseRecord, Provenance, case_content_hash
from toothmcl_data.store.repo import VersionInfo
from toothmcl_data.store.splits import SplitConfig, assign_splits
from toothmcl_data.store.versions import (
    VerifyReport,
    checkout_version,
    create_store,
    diff_versions,
    gc_store,
    list_versions,
    tag_version,
    verify_version,
)
from toothmcl_data.store.writer import Writer, publish

__all__ = [
    "TABLES",
    "CaseRecord",
    "LayoutConfig",
    "PairArrays",
    "Provenance",
    "SplitConfig",
    "VerifyReport",
    "VersionInfo",
    "VersionReader",
    "Writer",
    "assign_splits",
    "case_content_hash",
    "checkout_version",
    "create_store",
    "diff_versions",
    "gc_store",
    "list_versions",
    "open_version",
    "publish",
    "tag_version",
    "verify_version",
]
