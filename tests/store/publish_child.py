"""Child process for the crash test: ``python -m tests.store.publish_child STORE N`` publishes N records."""

from __future__ import annotations

import sys

from tests.store.conftest import PROVENANCE, base_patient, records
from toothmcl_data.store import publish


def main() -> None:
    store, n = sys.argv[1], int(sys.argv[2])
    for i in range(3):
        base_patient(i)
    print("ready", flush=True)
    info = publish(store, records(n), message=f"{n} cases", provenance=PROVENANCE)
    print("done", info.content_hash, flush=True)


if __name__ == "__main__":
    main()
