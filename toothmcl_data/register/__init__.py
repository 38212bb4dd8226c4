"""Register intraoral scans into their CBCT: tooth crown surfaces, global start, robust ICP, QC and pictures.

``register_jaw(cbct, mesh, cbct_labels=..., config=...) -> Registration`` is the entry point; each IOS jaw is
registered on its own (the bite differs between the two acquisitions).
"""

from toothmcl_data.register.config import RegisterConfig
from toothmcl_data.register.jaw import register_jaw
from toothmcl_data.register.surface import ToothSurface, cbct_surface

__all__ = ["RegisterConfig", "ToothSurface", "cbct_surface", "register_jaw"]
