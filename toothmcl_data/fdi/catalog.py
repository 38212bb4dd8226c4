"""The label-map catalog: the ``catalogs/labelmaps`` folder and its YAML files (label schemes and colour tables),
read strictly (duplicate keys refused, required keys checked, ``name`` equal to the file name). What a file
means is decided by its reader: :mod:`toothmcl_data.fdi.schemes` (``kind: label_scheme``) and
:mod:`toothmcl_data.fdi.colors` (``kind: color_table``).
"""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml

import toothmcl_data
from toothmcl_data.errors import LabelSchemeError

_REQUIRED = {
    "label_scheme": ("name", "kind", "description", "source", "to_fdi"),
    "color_table": ("name", "kind", "description", "source", "tolerance", "colors"),
}


def labelmaps_dir() -> Path:
    """The ``catalogs/labelmaps`` folder: packaged in the wheel, else at the repository root."""
    package = Path(toothmcl_data.__file__).parent
    catalogs = package / "catalogs"
    return (catalogs if catalogs.is_dir() else package.parent / "catalogs") / "labelmaps"


def catalog_folder(directory: str | Path | None) -> Path:
    """``directory`` resolved, or the catalog's own folder (:func:`labelmaps_dir`) when None."""
    return (Path(directory) if directory is not None else labelmaps_dir()).resolve()


class _StrictLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses duplicate mapping keys (PyYAML silently keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        keys: set[Hashable] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, Hashable) and key in keys:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            keys.add(key)
        return super().construct_mapping(node, deep=deep)


def read_catalog_file(path: Path, kind: str) -> dict[str, Any]:
    """Parse one ``catalogs/labelmaps`` YAML file of ``kind`` and check its required keys."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)
    except (OSError, yaml.YAMLError) as err:
        raise LabelSchemeError(f"{path}: cannot read label-map YAML: {err}") from err
    if not isinstance(data, dict):
        raise LabelSchemeError(f"{path}: expected a YAML mapping with keys {', '.join(_REQUIRED[kind])}")
    if data.get("kind") != kind:
        raise LabelSchemeError(f"{path}: kind is {data.get('kind')!r}, expected {kind!r}")
    missing = [k for k in _REQUIRED[kind] if k not in data]
    if missing:
        raise LabelSchemeError(
            f"{path}: missing key(s) {', '.join(missing)}; a {kind} file needs {', '.join(_REQUIRED[kind])} "
            "(see catalogs/labelmaps/README.md)"
        )
    if data["name"] != path.stem:
        raise LabelSchemeError(f"{path}: name {data['name']!r} must equal the file name {path.stem!r}")
    return data


def scheme_names(directory: str | Path | None = None, *, kind: str = "label_scheme") -> list[str]:
    """Names of the label schemes (``kind: label_scheme`` files; ``kind="color_table"``: the colour tables) in
    ``directory`` (default: the catalog)."""
    names = []
    for path in sorted(catalog_folder(directory).glob("*.yaml")):
        try:
            found = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader).get("kind")
        except (OSError, yaml.YAMLError, AttributeError) as err:
            raise LabelSchemeError(f"{path}: cannot read label-map YAML: {err}") from err
        if found == kind:
            names.append(path.stem)
    return names
