# syntax=docker/dockerfile:1.7
# Images of the product (build from the repository root; the Triton side is deploy/triton/Dockerfile):
#   gateway  (default) the FastAPI gateway: no torch (checked at build time), non-root uid 10001, runs with a
#            read-only root filesystem (only /tmp needs to be writable), HEALTHCHECK on /healthz.
#              docker build --target gateway -t tipsv2-gateway .
#   trainer  training, adapter training, ONNX export and the Jobs' adapter upload step (`tipsv2 ...`), uid 10001.
#              docker build --target trainer -t tipsv2-trainer .
#            torch comes from the default index (CUDA-enabled on Linux x86_64); for a CPU-only image point
#            TORCH_PIP_ARGS at PyTorch's CPU wheel index, e.g. --build-arg TORCH_PIP_ARGS="--index-url <cpu index>".
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
LABEL org.opencontainers.image.title="tipsv2-serve" \
      org.opencontainers.image.description="TIPSv2 image-text embeddings with per-tenant AdaLink adapters" \
      org.opencontainers.image.licenses="Apache-2.0"

# Sources only: the dependency layer below is reused while pyproject.toml does not change.
FROM base AS sources
COPY pyproject.toml README.md ./
COPY service ./service
COPY training ./training

FROM sources AS gateway-build
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install '.[serve]' \
    && /opt/venv/bin/python -c "import importlib.util as u, sys; sys.exit(u.find_spec('torch') is not None)" \
    && /opt/venv/bin/python -c "import service.app"

FROM base AS gateway
RUN useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin tipsv2
COPY --from=gateway-build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH TIPS_ENVIRONMENT=production HOME=/tmp
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
# TIPS_WORKERS processes (service/workers.py); each drains in-flight requests for up to 30 s on SIGTERM (Kubernetes
# gives 40: terminationGracePeriodSeconds).
CMD ["python", "-m", "service.workers", "--host", "0.0.0.0", "--port", "8080", "--graceful-s", "30"]

FROM sources AS trainer
ARG TORCH_SPEC=torch==2.13.0
ARG TORCH_PIP_ARGS=""
RUN useradd --uid 10001 --user-group --create-home --shell /usr/sbin/nologin tipsv2 \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install ${TORCH_PIP_ARGS} "${TORCH_SPEC}" \
    && /opt/venv/bin/pip install '.[train,serve]' \
    && /opt/venv/bin/tipsv2 --help >/dev/null
ENV PATH=/opt/venv/bin:$PATH HOME=/tmp
USER 10001:10001
ENTRYPOINT ["tipsv2"]
CMD ["--help"]
