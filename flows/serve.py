"""Serve the curation flow from this process (``flow.serve``): runs triggered from the Prefect UI or CLI execute
here. Needs a Prefect server (``prefect server start``) and ``PREFECT_API_URL`` pointing at it.

    python -m flows.serve
    prefect deployment run 'curate/curate-served' -p params='{"raw": "…", "store": "…", "key_file": "…"}'
"""

from __future__ import annotations

from flows.curate import curate

if __name__ == "__main__":
    curate.serve(name="curate-served", tags=["toothmcl"])
