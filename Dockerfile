# policyengine serve: the HTTP service (FastAPI on uvicorn), PostgreSQL-ready.
# Configuration comes from the environment (see deploy/compose.yaml and the
# README's "Containers" section); keys and tokens are mounted, never baked in.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/policyengine
COPY pyproject.toml README.md ./
COPY policyengine ./policyengine
COPY audit ./audit
COPY schemas ./schemas
COPY policies ./policies
# The otel extra is included so tracing only needs OTEL_EXPORTER_OTLP_ENDPOINT.
RUN pip install ".[service,postgres,otel]" \
    && useradd --system --uid 10001 --home-dir /var/lib/policyengine --create-home policyengine

# Runs as an unprivileged user; its home holds the state directory (.policyengine).
USER 10001:10001
WORKDIR /var/lib/policyengine
EXPOSE 8080

# /healthz answers while the process is up (readiness is /readyz).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status != 200)"]

ENTRYPOINT ["policyengine", "serve", "--host", "0.0.0.0", "--port", "8080"]
