#!/usr/bin/env bash
# afcli's GPU check on a machine that has PyTorch and CUDA but no network: put afcli and the wheels
# that `make wheels` gathered on a private path (site-packages and torch untouched), then run
# benchmarks/device_check.py, which prints one table (and writes it to $OUT/device_check.md when
# OUT is set). Under 8 minutes on one GPU.
#
#   make wheels WHEELS_PYTHON=3.12              # here, with network: wheels/ (~40 MB)
#   bash benchmarks/device_check.sh [--cpu]     # there (PYTHON=… picks the interpreter with torch)
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
wheels=${WHEELS_DIR:-wheels}
site=${AFCLI_SITE:-$(mktemp -d)}

ls "$wheels"/afcli-*.whl >/dev/null 2>&1 || { echo "device_check: no afcli wheel in $wheels/ (run make wheels)" >&2; exit 2; }
torch_before=$("$python" -c 'import torch; print(torch.__version__)') \
    || { echo "device_check: $python has no torch" >&2; exit 2; }
missing=$("$python" -c 'import importlib.util as u; print(" ".join(m for m in ("numpy", "scipy") if u.find_spec(m) is None))')
[ -z "$missing" ] || { echo "device_check: $python lacks $missing: make wheels WHEELS_SKIP= brings them" >&2; exit 2; }

"$python" -m pip install --quiet --no-index --no-deps --no-compile --target "$site" "$wheels"/*.whl
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
torch_after=$("$python" -c 'import torch; print(torch.__version__)')
[ "$torch_before" = "$torch_after" ] || { echo "device_check: torch changed ($torch_before → $torch_after)" >&2; exit 1; }
"$python" -m afcli --version

out=${OUT:-.}
"$python" benchmarks/device_check.py "$@" --out "$out/device_check.md"
