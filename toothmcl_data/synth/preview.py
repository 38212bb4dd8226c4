"""PNG previews of a written synthetic drop, so a person can see each patient looks plausible.

Reads what :func:`toothmcl_data.synth.drop.write_drop` wrote: the ground-truth CBCT and label map, and each
IOS mesh through the library's own reader (so the picture shows what a user of the drop would load).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from toothmcl_data.errors import ToothmclError
from toothmcl_data.io.mesh import read_mesh
from toothmcl_data.report.preview import mesh_png, volume_slices_png
from toothmcl_data.synth.drop import DROP_DIR, TRUTH_DIR
from toothmcl_data.types import Volume

log = logging.getLogger(__name__)


def write_previews(out: Path, *, progress: Callable[[int], None] | None = None) -> list[Path]:
    """Write ``out/preview/<key>_cbct.png`` and ``<key>_<jaw>.png`` for every patient of the drop in ``out``.

    A mesh the reader rejects (a planted fault) gets no picture; the reason is logged."""
    truth_dir = Path(out) / TRUTH_DIR
    truth = json.loads((truth_dir / "truth.json").read_text())
    folder = Path(out) / "preview"
    written: list[Path] = []
    for entry in truth["patients"]:
        key = entry["key"]
        affine = np.asarray(entry["cbct"]["affine"])
        cbct = Volume(np.load(truth_dir / entry["arrays"]["cbct"]), affine)
        labels = Volume(np.load(truth_dir / entry["arrays"]["cbct_labels"]), affine)
        title = f"{key}: CBCT {entry['format']}, {len(entry['teeth'])} teeth, FDI label map overlaid"
        written.append(volume_slices_png(cbct, labels, folder / f"{key}_cbct.png", title=title))
        for item in entry["files"]:
            if item["role"] != "ios_mesh":
                continue
            path = Path(out) / DROP_DIR / item["path"]
            try:
                mesh = read_mesh(path)
            except ToothmclError as err:
                log.warning("preview: %s %s scan not drawn: %s", key, item["jaw"], err)
                continue
            title = f"{key}: {item['jaw']} scan ({path.suffix[1:]}, {len(mesh.vertices)} vertices), FDI colours"
            written.append(mesh_png(mesh, folder / f"{key}_{item['jaw']}.png", title=title))
        if progress is not None:
            progress(1)
    return written
