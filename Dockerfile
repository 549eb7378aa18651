# xzip-intake worker: `intake run` as a non-root user; database, archive and ledger under /data.
FROM python:3.11-slim-bookworm

# p7zip-full lets rarfile open .rar attachments (without it they are reported UNREADABLE_FILE).
# Not pinned: bookworm only ships security fixes for it, and a pin would break the build when
# the archive drops the old version.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends p7zip-full \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    INTAKE_CONFIG=/config/config.toml \
    PATH=/opt/xzip-intake/.venv/bin:$PATH

WORKDIR /app
COPY pyproject.toml README.md ./
COPY intake ./intake
COPY parsers ./parsers
COPY reports ./reports
# The README's install steps ("Installing on a server"): a venv in /opt/xzip-intake, the runtime
# dependencies only (no [test] extra); versions are bounded in pyproject.toml.
# OCR of scanned forms is the optional extra `.[ocr]`: to have it in the image, install `.[ocr]`
# here instead of `.` (and its system packages in the apt-get step above).
RUN python3 -m venv /opt/xzip-intake/.venv \
    && /opt/xzip-intake/.venv/bin/pip install --no-cache-dir . \
    && groupadd --system --gid 10001 intake \
    && useradd --system --uid 10001 --gid intake --home-dir /data --no-create-home --shell /usr/sbin/nologin intake \
    && mkdir -p /data /config \
    && chown intake:intake /data

# Numeric, so runtimes that check "not root" (Kubernetes runAsNonRoot) can tell; 10001 is the user intake.
USER 10001:10001
# /config holds config.toml (set paths.data_dir = "/data" in it); passwords come from the environment.
VOLUME ["/data", "/config"]

# Unhealthy when polls stop succeeding: the last successful poll is older than three poll intervals, or
# the last three polls failed (`intake health` reads only the database; it prints the reason).
HEALTHCHECK --interval=1m --timeout=30s --start-period=15m --retries=3 \
    CMD ["intake", "health", "--config", "/config/config.toml"]

ENTRYPOINT ["intake"]
CMD ["run", "--config", "/config/config.toml"]
