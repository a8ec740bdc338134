# syntax=docker/dockerfile:1
# streamlearn worker image:  docker build -t streamlearn .  (or see deploy/README.md)
ARG PYTHON_IMAGE=python:3.11-slim

# --- build: install streamlearn and its dependencies into a venv -------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
# README* and not README.md: the build must not fail while the readme is absent.
COPY pyproject.toml README* ./
COPY streamlearn ./streamlearn
RUN --mount=type=cache,target=/root/.cache/pip /opt/venv/bin/pip install .

# --- runtime ------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
# The venv is installed (and byte-compiled) by root and only read by the worker's
# unprivileged user, so the process cannot modify its own code.
RUN groupadd --gid 10001 streamlearn \
 && useradd --uid 10001 --gid streamlearn --create-home --home-dir /home/streamlearn \
      --shell /usr/sbin/nologin streamlearn \
 && install -d -o streamlearn -g streamlearn -m 0750 /data
COPY --from=build /opt/venv /opt/venv

# STREAMLEARN_WEB_HOST=0.0.0.0: outside a container the worker listens on loopback
# only; a container's loopback is unreachable from the others (Prometheus), so here it
# listens on every interface and the container network is the boundary. If you
# publish 6066 to the host, publish it as 127.0.0.1:<port>:6066, never on all host
# interfaces. The HEALTHCHECK, EXPOSE and deploy/prometheus.yml assume port 6066.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    STREAMLEARN_DATA_DIR=/data \
    STREAMLEARN_WEB_HOST=0.0.0.0 \
    STREAMLEARN_WEB_PORT=6066

# RocksDB tables and Faust state. /data exists and belongs to the worker user before
# VOLUME, so a fresh (anonymous or named) volume inherits that ownership.
VOLUME ["/data"]

USER streamlearn
WORKDIR /home/streamlearn
EXPOSE 6066

# urlopen raises on a refused connection or a non-2xx answer, so the exit status is
# the verdict. The empty ProxyHandler keeps an HTTP(S)_PROXY variable from diverting it.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:6066/api/v1/health', timeout=4)"]

ENTRYPOINT ["streamlearn"]
CMD ["worker"]
