# syntax=docker/dockerfile:1.7
# Targets:
#   gateway  (default) the FastAPI gateway: no torch, non-root, read-only-root-filesystem friendly
#   trainer  training, adapter training, ONNX export (torch CPU by default; pass TORCH_SPEC for a CUDA build)
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

FROM base AS gateway-build
COPY pyproject.toml README.md ./
COPY service ./service
COPY training ./training
RUN python -m venv /opt/venv && /opt/venv/bin/pip install '.[serve]' \
    && /opt/venv/bin/python -c "import importlib.util as u, sys; sys.exit(u.find_spec('torch') is not None)"

FROM base AS gateway
RUN useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin tipsv2
COPY --from=gateway-build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH TIPS_ENVIRONMENT=production
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
CMD ["uvicorn", "service.main:app", "--host", "0.0.0.0", "--port", "8080", "--timeout-graceful-shutdown", "30"]

FROM base AS trainer
ARG TORCH_SPEC=torch==2.13.0
RUN useradd --uid 10001 --user-group --create-home --shell /usr/sbin/nologin tipsv2
COPY pyproject.toml README.md ./
COPY service ./service
COPY training ./training
RUN python -m venv /opt/venv && /opt/venv/bin/pip install "${TORCH_SPEC}" && /opt/venv/bin/pip install '.[train,serve]'
ENV PATH=/opt/venv/bin:$PATH
USER 10001:10001
ENTRYPOINT ["tipsv2"]
CMD ["--help"]
