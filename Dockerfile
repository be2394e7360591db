# The Dagster deployment's image: one image for the code location's gRPC server, the webserver, the daemon and
# every run (infra/dagster.tf picks the command). Build and push: infra/README.md.
#
#   docker build -t consorcio-dagster:<tag> .
#
# The project is installed non-editable from requirements.lock (pinned, hashed: `make lock`); no secret is
# copied or passed as a build argument; the final stage has no compiler, no pip cache and runs as a non-root user.

# ---- build: resolve nothing, install the lock, build and install the project's wheel ------------------------
FROM python:3.11-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
WORKDIR /src

COPY requirements.lock ./
RUN /opt/venv/bin/pip install --require-hashes --no-deps --only-binary=:all: -r requirements.lock

COPY pyproject.toml ./
COPY consorcio_assets ./consorcio_assets
RUN /opt/venv/bin/pip wheel --no-deps --wheel-dir /wheels . \
 && /opt/venv/bin/pip install --no-deps --no-index /wheels/*.whl \
 && /opt/venv/bin/pip check

# ---- runtime -----------------------------------------------------------------------------------------------
FROM python:3.11-slim-bookworm AS runtime

LABEL org.opencontainers.image.title="consorcio-migration dagster" \
      org.opencontainers.image.description="Dagster code location, webserver and daemon of the consorcio migration"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DAGSTER_HOME=/opt/dagster/home \
    DAGSTER_EVENT_BATCH_SIZE=1000 \
    CONSORCIO_ENV=aws

RUN groupadd --system --gid 10001 dagster \
 && useradd --system --uid 10001 --gid dagster --home-dir /opt/dagster --shell /usr/sbin/nologin dagster \
 && mkdir -p /opt/dagster/home/storage /opt/dagster/deploy \
 && chown -R dagster:dagster /opt/dagster/home/storage

# ECS copies a VOLUME path's content and ownership into the task volume mounted there (the root filesystem is
# read-only on ECS), so the non-root user can write Dagster's local artifacts and temporary files.
VOLUME ["/tmp", "/opt/dagster/home/storage"]

COPY --from=build /opt/venv /opt/venv
COPY deploy/workspace.yaml /opt/dagster/deploy/workspace.yaml
COPY deploy/dagster.yaml /opt/dagster/home/dagster.yaml

USER dagster
WORKDIR /opt/dagster

EXPOSE 3000 4000

# The default command is the code server; ECS runs the same image as webserver and daemon (their own checks
# are in the task definitions).
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
  CMD ["dagster", "api", "grpc-health-check", "--port", "4000"]

# Refuses to start, with one line naming the missing or unusable setting, before exec'ing the command.
ENTRYPOINT ["python", "-m", "consorcio_assets.deployment.deploy_check"]
CMD ["dagster", "code-server", "start", "--host", "0.0.0.0", "--port", "4000", \
     "--module-name", "consorcio_assets.definitions", "--location-name", "consorcio_migration"]
