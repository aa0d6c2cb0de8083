# syntax=docker/dockerfile:1
# jobgraph API image. Production talks to a real MongoDB replica set
# (JOBGRAPH_MONGODB_URI); the embedded development database is not installed.

# --- builder: the locked runtime dependencies and the wheel, into a venv
FROM python:3.11-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
# Every download is pinned and hash-checked (requirements/*.lock, made by `make lock`).
# runtime.lock holds no extras: neither [dev] (test tools) nor [embedded] (SecantusDB)
# reach the image. This layer changes only when the locks do.
COPY requirements/runtime.lock requirements/build.lock ./requirements/
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --require-hashes -r requirements/runtime.lock \
    && python -m pip install --require-hashes -r requirements/build.lock
COPY pyproject.toml README.md ./
COPY graph ./graph
COPY repository ./repository
# The wheel is built with the locked setuptools and installed without resolving again.
RUN python -m pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
    && /opt/venv/bin/pip install --no-deps /wheels/*.whl

# --- runtime: the venv only, run as an unprivileged user
FROM python:3.11-slim AS runtime
ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    JOBGRAPH_LOG_FORMAT=json
RUN groupadd --system --gid 10001 jobgraph \
    && useradd --system --uid 10001 --gid jobgraph --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin jobgraph
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
USER 10001:10001
EXPOSE 8000
# Liveness only (the process answers); readiness (MongoDB, change stream) is /readyz.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"]
CMD ["jobgraph", "serve", "--host", "0.0.0.0", "--port", "8000"]
