# Cairn image: every binary plus MISP reference data fetched from PyPI at build time.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --workspace --bins

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates python3 python3-pip \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/cairnctl /src/target/release/cairn-api /src/target/release/cairn-relay \
     /src/target/release/cairn-indexer /src/target/release/cairn-correlator /src/target/release/cairn-exporter /usr/local/bin/
COPY scripts/lib.sh /opt/cairn/scripts/lib.sh
RUN mkdir -p /opt/cairn/.local && cd /opt/cairn && bash -c 'source scripts/lib.sh && ensure_data'
ENV CAIRN_DATA_DIR=/opt/cairn/.local/data
WORKDIR /opt/cairn
