# Leasehold's one image: the `leasehold` command (server, worker, frontend and the people's CLI).
#
#   docker build -t leasehold .            # or: docker compose up --build (see docker-compose.yml)
#   docker run --rm leasehold --version
#
# Stage "builder" compiles the Rust partition core (assignment/partition-core, PyO3) with maturin into
# one wheel holding assignment._core and the Python packages (pyproject.toml's [tool.maturin]).
# Stage "runtime" is Debian bookworm's slim Python 3.11 with bubblewrap (sandbox namespaces; the worker
# container needs privileges for it), slirp4netns and iproute2 (each sandbox's network namespace and its
# egress rules; util-linux, in the base image, has nsenter) and that wheel. tests/deploy/test_compose.py checks this file.

FROM python:3.11-slim-bookworm AS builder
ENV CARGO_HOME=/usr/local/cargo RUSTUP_HOME=/usr/local/rustup PATH=/usr/local/cargo/bin:$PATH
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal \
    && pip install --no-cache-dir "maturin==1.16.0"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY proto/ proto/
COPY assignment/ assignment/
COPY journal/ journal/
COPY workers/ workers/
RUN maturin build --release --out /wheels

FROM python:3.11-slim-bookworm AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap slirp4netns iproute2 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=builder /wheels/ /wheels/
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels && mkdir -p /var/lib/leasehold
ENV PYTHONUNBUFFERED=1
WORKDIR /var/lib/leasehold
# 7100: assignment server (gRPC); 7001: worker agent (gRPC); 9000: frontend Lambda HTTP API; 9001: frontend gRPC.
EXPOSE 7100 7001 9000 9001
ENTRYPOINT ["leasehold"]
CMD ["--help"]
