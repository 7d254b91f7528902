#!/usr/bin/env bash
# Prepares .whl/ (git-ignored; carry it with the device tool: carry=[".whl"]) with what bench/serving_gpu.py needs
# on the H200 machine beyond what that machine has (Python 3.12, torch, numpy 2; no tritonserver, no registry):
#   pytriton-slim.tar.xz   the tritonserver 2.51 bundled in nvidia-pytriton 0.7.0: binary, libraries, Python backend
#                          and the Python 3.12 stub only (the whole wheel, 55 MB, leaves no room for numpy below)
#   tritonclient, python-rapidjson, sentencepiece (cp312)   the client, and the tokenizer the model library imports
#   numpy 1.26.4 (cp312)   for the Python backend's stub only: the stub reads BYTES inputs (the adapter ids) through
#                          numpy's C API as numpy 1 lays it out; with numpy 2 they arrive corrupted and the stub dies
# About 48 MB in all, under the device tool's 64 MiB carry limit. Installing it there: see docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PYVER=${PYVER:-3.12}  # the GPU machine's Python; another value prepares a CPU rehearsal (docs/benchmarks.md)
OUT=${OUT_DIR:-.whl}
rm -rf "$OUT"
mkdir -p "$OUT"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version "$PYVER" \
  --platform manylinux2014_x86_64 --dest "$OUT" \
  "tritonclient==2.73.0" "python-rapidjson==1.20" "sentencepiece==0.2.0" "numpy==1.26.4"
"$PY" -m pip download --quiet --no-deps --dest "$tmp" "nvidia-pytriton==0.7.0"
"$PY" -m pip install --quiet --no-deps --target "$tmp/site" "$tmp"/nvidia_pytriton-*.whl
stubs="$tmp/site/pytriton/tritonserver/python_backend_stubs"
find "$stubs" -mindepth 1 -maxdepth 1 ! -name "$PYVER" -exec rm -rf {} +
rm -f "$tmp"/site/nvidia_pytriton.libs/libpython3-*.13.so*  # only the Python 3.13 stub links it
(cd "$tmp/site" && XZ_OPT=-T0 tar -cJf - --exclude=__pycache__ pytriton/__init__.py pytriton/tritonserver \
  nvidia_pytriton.libs) > "$OUT/pytriton-slim.tar.xz"
ls -l "$OUT"
du -ch "$OUT"/* | tail -1
