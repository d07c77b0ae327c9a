# The CTCP application image: the locked environment, the source, migrations and policies.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/ctcp/.venv PATH=/opt/ctcp/.venv/bin:$PATH
WORKDIR /opt/ctcp
RUN pip install --no-cache-dir uv==0.13.9
COPY pyproject.toml uv.lock README.md ./
# The demo package's manifest alone, so uv sees the whole workspace; its code (ctcp_demo)
# stays out of the image: it is a dev dependency, and --no-dev installs none of those.
COPY demo/pyproject.toml ./demo/
COPY platform ./platform
COPY alembic ./alembic
COPY policies ./policies
RUN uv sync --frozen --no-dev && useradd --system --home /opt/ctcp ctcp \
    && mkdir -p /opt/ctcp/var/audit-key /opt/ctcp/var/audit-public /opt/ctcp/var/audit-checkpoints \
    && chown -R ctcp /opt/ctcp/var && chmod 700 /opt/ctcp/var/audit-key
USER ctcp
EXPOSE 8000
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
CMD ["ctcp", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
