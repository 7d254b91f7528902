# Images of the product, built from the repository root (the Triton side is deploy/triton/):
#   gateway  the FastAPI gateway: no torch (checked at build time), non-root uid 10001, runs with a read-only root
#            filesystem (only /tmp needs to be writable), HEALTHCHECK on /healthz.
#              docker build --target gateway -t tipsv2-gateway .
#   trainer  training, adapter training, ONNX export, `tipsv2 local up --prepare-only` and the Jobs' adapter upload
#            step (`tipsv2 ...`), uid 10001. A CPU torch unless asked otherwise (see TORCH_* below).
#              docker build --target trainer -t tipsv2-trainer .
# Always pass --target: the classic builder (DOCKER_BUILDKIT=0) builds every stage before the target, so the gateway
# stages come first and the trainer (torch) last. Nothing here needs BuildKit or a `# syntax=` frontend image.
#
# Build arguments:
#   BASE_IMAGE       any Debian-like image with python3.11 (+ venv), ca-certificates and useradd; default the official
#                    Python image. `scripts/build_images.sh` builds one from Debian packages where no registry is
#                    reachable (mmdebstrap + docker import).
#   EXTRA_CA_CERTS   PEM text of extra CA certificates for the build's downloads, for networks whose proxy inspects
#                    TLS: --build-arg EXTRA_CA_CERTS="$(cat corp-ca.pem)". Trusted by the build stages only; the
#                    final images carry the base image's trust store unchanged.
#   TORCH_SPEC, TORCH_PIP_ARGS, TORCH_CUDA   (trainer) which torch and from where. Default: the CPU build from PyTorch's
#                    CPU index. The build fails unless the installed torch is a CUDA build exactly when TORCH_CUDA=yes,
#                    so an index serving CUDA wheels cannot turn the image into a multi-GB CUDA image unnoticed.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
LABEL org.opencontainers.image.title="tipsv2-serve" \
      org.opencontainers.image.description="TIPSv2 image-text embeddings with per-tenant AdaLink adapters" \
      org.opencontainers.image.licenses="Apache-2.0"
# The adapter store's mount point belongs to the gateway's user: a fresh named volume mounted there takes its owner.
RUN useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin tipsv2 \
    && mkdir -p /var/lib/tipsv2/adapters \
    && chown -R 10001:10001 /var/lib/tipsv2

# Build stages only: the extra CA, pip pointed at the system trust store (the official image's pip would use its own
# certifi bundle), the sources. The dependency layers below are reused while pyproject.toml does not change.
FROM base AS builder
ARG EXTRA_CA_CERTS=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_CERT=/etc/ssl/certs/ca-certificates.crt
RUN set -e; \
    if [ -n "$EXTRA_CA_CERTS" ]; then \
        printf '%s\n' "$EXTRA_CA_CERTS" > /usr/local/share/ca-certificates/tipsv2-build-extra.crt; \
        update-ca-certificates >/dev/null; \
    fi; \
    if [ ! -s "$PIP_CERT" ]; then echo "no CA bundle at $PIP_CERT: the base image needs ca-certificates" >&2; exit 1; fi
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
COPY training ./training

FROM builder AS gateway-build
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install '.[serve]' \
    && /opt/venv/bin/python -c "import importlib.util as u, sys; sys.exit(u.find_spec('torch') is not None)" \
    && /opt/venv/bin/python -c "import service.gateway.app"

FROM base AS gateway
COPY --from=gateway-build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH TIPS_ENVIRONMENT=production HOME=/tmp
USER 10001:10001
EXPOSE 8080 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('TIPS_PORT', '8080'), timeout=2)"]
# TIPS_WORKERS processes (service/gateway/workers.py) on TIPS_HOST:TIPS_PORT (default 0.0.0.0:8080); each drains in-flight
# requests for up to 30 s on SIGTERM (Kubernetes gives 40: terminationGracePeriodSeconds).
CMD ["python", "-m", "service.gateway.workers", "--graceful-s", "30"]

# On top of the gateway's build stage (its virtualenv already holds the serving dependencies): torch and the training
# extras added in place. One stage, not a copy of the virtualenv into a fresh one: copying its 1.2 GB layer cost
# about 40 s on 2 cores. The extra CA leaves the trust store at the end of the step, as in the gateway image.
FROM gateway-build AS trainer
ARG TORCH_SPEC=torch==2.13.0+cpu
ARG TORCH_PIP_ARGS="--extra-index-url https://download.pytorch.org/whl/cpu"
ARG TORCH_CUDA=no
# torch first (TORCH_PIP_ARGS), then the training extras (whose `torch==2.13.0` the +cpu build satisfies); checked after.
RUN /opt/venv/bin/pip install ${TORCH_PIP_ARGS} "${TORCH_SPEC}" \
    && /opt/venv/bin/pip install '.[train,serve]' \
    && /opt/venv/bin/python -c "import sys, torch; cuda = torch.version.cuda; want = '${TORCH_CUDA}' == 'yes'; \
print('torch', torch.__version__, 'CUDA', cuda); \
sys.exit(None if bool(cuda) == want else f'torch {torch.__version__} is a {\"CUDA\" if cuda else \"CPU\"} build but \
TORCH_CUDA=${TORCH_CUDA}: pass TORCH_SPEC/TORCH_PIP_ARGS for the build you want (and TORCH_CUDA=yes for CUDA)')" \
    && /opt/venv/bin/tipsv2 --help >/dev/null \
    && if [ -f /usr/local/share/ca-certificates/tipsv2-build-extra.crt ]; then \
        rm /usr/local/share/ca-certificates/tipsv2-build-extra.crt && update-ca-certificates --fresh >/dev/null; \
    fi
ENV PATH=/opt/venv/bin:$PATH HOME=/tmp
USER 10001:10001
ENTRYPOINT ["tipsv2"]
CMD ["--help"]
