# Sourced by scripts/demo and scripts/test: create or reuse .venv and install toothmcl into it.
# torch goes in first, pinned, so that pip takes the CPU wheel on disk instead of a multi-GB CUDA build.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
# Open3D (the `register` extra, in `dev`) loads Debian's libusb-1.0; install it when missing and apt is usable.
if ! ldconfig -p 2>/dev/null | grep -q libusb-1.0 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get install -y -q libusb-1.0-0 >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q libusb-1.0-0 >/dev/null 2>&1; }) \
    || echo "note: could not install libusb-1.0; registration runs without the Open3D feature search"
fi
stamp=".venv/.toothmcl-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -e ".[dev]"
  touch "$stamp"
fi
export PATH="$ROOT/.venv/bin:$PATH"
