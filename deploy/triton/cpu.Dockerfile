# Triton on CPU without NVIDIA's registry: the real tritonserver (2.51) that the nvidia-pytriton wheel bundles, with
# its Python backend, serving a `local`-flavour repository (Python-backend models: numpy embedding stages and
# onnxruntime trunks), as the local stack and the tests do. The compose `cpu` profile runs it; the chart can too
# (`triton.gpus: 0`, `triton.image` set to this image, a `--flavour local` repository).
#   docker build -f deploy/triton/cpu.Dockerfile -t tipsv2-triton-cpu .
#
# It behaves like NVIDIA's Triton image where the chart and compose rely on it: `tritonserver` on PATH with its
# backends under /opt/tritonserver (the default backend and cache directories), uid 1000, ports 8000-8002, no
# writes outside /tmp and /dev/shm (runs with a read-only root filesystem).
#
# Build arguments: BASE_IMAGE (Debian-like with python3.11 + venv and ca-certificates; the Python-backend stub is built
# for Python 3.11 and links libpython3.11, installed from Debian when the base lacks it) and EXTRA_CA_CERTS (PEM text,
# trusted by the build stage only), as in ../../Dockerfile.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ARG EXTRA_CA_CERTS=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_CERT=/etc/ssl/certs/ca-certificates.crt
RUN set -e; \
    if [ -n "$EXTRA_CA_CERTS" ]; then \
        printf '%s\n' "$EXTRA_CA_CERTS" > /usr/local/share/ca-certificates/tipsv2-build-extra.crt; \
        update-ca-certificates >/dev/null; \
    fi; \
    if [ ! -s "$PIP_CERT" ]; then echo "no CA bundle at $PIP_CERT: the base image needs ca-certificates" >&2; exit 1; fi
# The `triton-cpu` extra of pyproject.toml, read from it (one list to maintain); no project code is needed: the
# repository generator copies the models' code into the repository.
COPY pyproject.toml /tmp/pyproject.toml
RUN python -c "import tomllib; deps = tomllib.load(open('/tmp/pyproject.toml', 'rb'))['project']['optional-dependencies']; \
print('\n'.join(deps['triton-cpu']))" > /tmp/requirements.txt \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install -r /tmp/requirements.txt

FROM ${BASE_IMAGE} AS triton-cpu
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN set -e; \
    if ! ldconfig -p | grep -q 'libpython3\.11\.so\.1\.0'; then \
        apt-get update && apt-get install -y --no-install-recommends libpython3.11 && rm -rf /var/lib/apt/lists/*; \
    fi
COPY --from=build /opt/venv /opt/venv
# The layout NVIDIA's image has: the backend directory and cache directory at their default places (symlinks into
# the wheel, so the binaries find their bundled libraries), the stub of this image's Python. The interpreter's
# library directory and the wheel's libraries go to the loader's configuration, so no LD_LIBRARY_PATH is needed; the
# virtualenv first on PATH makes the stub's interpreter import from it.
RUN set -e; \
    root=$(/opt/venv/bin/python -c "import pathlib, pytriton; print(pathlib.Path(pytriton.__file__).parent / 'tritonserver')"); \
    version=$(/opt/venv/bin/python -c "import sys; print('%d.%d' % sys.version_info[:2])"); \
    test -x "$root/python_backend_stubs/$version/triton_python_backend_stub"; \
    mkdir -p /opt/tritonserver/backends/python; \
    ln -s "$root/bin/tritonserver" /usr/local/bin/tritonserver; \
    ln -s "$root/caches" /opt/tritonserver/caches; \
    for f in libtriton_python.so triton_python_backend_utils.py; do \
        ln -s "$root/backends/python/$f" /opt/tritonserver/backends/python/$f; \
    done; \
    ln -s "$root/python_backend_stubs/$version/triton_python_backend_stub" /opt/tritonserver/backends/python/; \
    /opt/venv/bin/python -c "import sysconfig; print(sysconfig.get_config_var('LIBDIR'))" > /etc/ld.so.conf.d/00-tipsv2-triton.conf; \
    echo "$(dirname "$(dirname "$root")")/nvidia_pytriton.libs" >> /etc/ld.so.conf.d/00-tipsv2-triton.conf; \
    ldconfig; \
    for bin in "$root/bin/tritonserver" /opt/tritonserver/backends/python/triton_python_backend_stub \
               /opt/tritonserver/backends/python/libtriton_python.so; do \
        if ldd "$bin" | grep 'not found'; then echo "$bin misses libraries" >&2; exit 1; fi; \
    done; \
    useradd --uid 1000 --user-group --no-create-home --shell /usr/sbin/nologin triton-server; \
    mkdir -p /models/repository /var/lib/tipsv2/adapters; \
    chown 10001:10001 /var/lib/tipsv2/adapters
# (/var/lib/tipsv2/adapters is the gateway's (uid 10001): whichever container first mounts a fresh shared volume there
# gives it its owner, and Triton only reads it.)
ENV PATH=/opt/venv/bin:$PATH HOME=/tmp OPENBLAS_NUM_THREADS=1
USER 1000:1000
EXPOSE 8000 8001 8002
HEALTHCHECK --interval=10s --timeout=3s --start-period=2m --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/v2/health/ready', timeout=2)"]
CMD ["tritonserver", "--model-repository=/models/repository", "--strict-readiness=true"]
