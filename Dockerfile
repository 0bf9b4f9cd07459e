# syntax=docker/dockerfile:1
# blast-radius receiver, notification worker and platform simulator in one image.
#   docker build -t blast-radius .
#   docker run --env-file .env -e REDIS_URL=redis://redis:6379/0 -p 8080:8080 blast-radius
# The default command serves the receiver; `blast-radius worker` runs the worker.

FROM python:3.11-slim AS builder
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml setup.cfg README.md ./
COPY receiver ./receiver
# Our wheel and every dependency's, so the final stage installs offline.
RUN pip wheel --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    BIND=0.0.0.0:8080 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/blast-radius-metrics
RUN groupadd --system --gid 10001 blast-radius \
    && useradd --system --uid 10001 --gid blast-radius --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin blast-radius
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels blast-radius
WORKDIR /app
COPY gunicorn.conf.py ./
USER blast-radius:blast-radius
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('BIND', '0.0.0.0:8080').rsplit(':', 1)[1]; urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=2)"]
CMD ["gunicorn", "-c", "gunicorn.conf.py", "receiver:create_app()"]
