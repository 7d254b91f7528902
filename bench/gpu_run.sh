#!/usr/bin/env bash
# The whole H200 measurement as one device call (docs/benchmarks.md, "Running it"): installs what bench/gpu_carry.sh
# put in .whl/ (carried there: carry=[".whl"]) into /tmp, then runs bench/serving_gpu.py with its results in $OUT.
#   bash bench/gpu_run.sh [--no-compile] [--budget-s 500]      (timeout_s 600 on the device call)
# The tritonserver and the client go to /tmp/site; numpy 1.26 goes to /tmp/stubenv, the Python backend stub's working
# directory (the stub corrupts BYTES inputs under the machine's numpy 2; docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
mkdir -p /tmp/site /tmp/stubenv "${OUT:=/tmp/out}"
tar -xJf .whl/pytriton-slim.tar.xz -C /tmp/site
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/tritonclient-*.whl \
  .whl/python_rapidjson-*.whl .whl/sentencepiece-*.whl
python3 -m pip install -q --no-index --no-deps --target /tmp/stubenv .whl/numpy-1.26.4-*.whl
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt" || true
echo "installed in $(( $(date +%s) - started )) s"
python3 bench/serving_gpu.py --site /tmp/site --stub-env /tmp/stubenv --out "$OUT" "$@" 2>&1 | tee "$OUT/serving_gpu.log"
