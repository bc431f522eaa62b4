# syntax=docker/dockerfile:1
#
# Peer City Exchange: production image.
#
#   docker build -t ghcr.io/peer-city-exchange/cityexchange:0.1.0 .
#
# Two stages: `builder` installs the project and its runtime dependencies (the exact versions
# and hashes of requirements.lock: no `embedded`, `test` or other development extra) into the
# virtual environment /opt/venv; the final stage copies only that environment onto a fresh
# base image. The image runs as the fixed non-root user 10001:10001, writes nothing outside
# /tmp (run it with a read-only root filesystem and a writable /tmp) and is configured only
# through CITYEXCHANGE_* variables.
#
# Bump the base image by changing this one line (both stages use it, which the copied venv
# relies on: its `python` is a symlink to the base image's interpreter).
ARG PYTHON_IMAGE=python:3.12.15-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src

# Dependencies first, from the lock (the runtime dependencies and the `otel` extra, so
# tracing can be switched on by OTEL_* variables; refreshed as README.md says), so that this
# layer stays cached while only the sources change. Every file's hash must match the lock's:
# the same bytes on every build, and nothing pip would resolve on its own.
COPY requirements.lock ./
RUN pip install --require-hashes --no-deps -r requirements.lock

# Then the project itself (README.md is pyproject's `readme`, needed to build it), with
# GraphiQL's assets as package data (unused: the image runs in production). It is built
# with the locked setuptools already installed above (no build isolation: nothing fetched
# unpinned). pip compiles the installed modules to .pyc here, so the read-only runtime
# never needs to.
COPY pyproject.toml README.md ./
COPY services ./services
COPY schema ./schema
COPY auth ./auth
COPY cityexchange ./cityexchange
RUN pip install --no-deps --no-build-isolation . \
    && pip check \
    && python -m pip uninstall --yes pip


FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="cityexchange" \
      org.opencontainers.image.description="Peer City Exchange: GraphQL API for cities sharing resilience problems and solutions" \
      org.opencontainers.image.licenses="Apache-2.0"

# The runtime user: fixed numeric IDs, so Kubernetes' runAsNonRoot can check it and
# runAsUser/fsGroup 10001 match. No home directory: HOME points at the writable /tmp.
RUN groupadd --system --gid 10001 cityexchange \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
        --shell /usr/sbin/nologin cityexchange

COPY --from=builder /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# An empty, root-owned working directory: uvicorn puts the working directory on sys.path,
# so it must not hold anything importable, and nothing should be written relative to it.
WORKDIR /app

USER 10001:10001

EXPOSE 8000

# uvicorn handles SIGTERM: /readyz answers 503 for CITYEXCHANGE_DRAIN_SECONDS, then it stops
# accepting and finishes in-flight requests within --timeout-graceful-shutdown (20 s).
STOPSIGNAL SIGTERM

# For plain Docker and Compose (Kubernetes ignores HEALTHCHECK and uses its own probes).
# Liveness only: /healthz does not touch the database. urlopen raises, and so exits
# non-zero, on a refused connection, a timeout or any non-2xx answer.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]

# The documented run command (docs/operations.md; tests/test_deploy.py compares them); the
# Kubernetes Deployment relies on it (no command/args there). The app logs one line per
# request itself (with its request id), hence --no-access-log; per-message deflate is off
# (docs/performance.md).
CMD ["uvicorn", "cityexchange.app:app_from_env", "--factory", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers", "--timeout-graceful-shutdown", "20", "--ws-max-size", "65536", "--ws-per-message-deflate", "false", "--no-access-log"]
