# One image for every Hivewire Python process: registry, coordinator, gateway and agents.
# The compose file picks the process with `command:`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY hivewire ./hivewire
COPY services ./services
# The custom commands the gateway serves (HIVEWIRE_COMMANDS_DIR in docker-compose.yml).
COPY commands ./commands
# The services install as the package `hivewire_services` (a link to services/, as in the repo).
RUN ln -s services hivewire_services \
    && pip install . \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin hivewire

USER hivewire
EXPOSE 50051 50052 50053
CMD ["hivewire", "--help"]
