# syntax=docker/dockerfile:1
# Build: docker build -t thor .   Run: docker run -p 8080:8080 -v thor-data:/data thor
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# The cargo registry and target/ live in BuildKit cache mounts, kept between builds: a change to
# the code recompiles thor (and re-links), not every dependency. The cache is not in the image,
# so the binary is copied out of it.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin thor \
    && cp target/release/thor /usr/local/bin/thor && strip /usr/local/bin/thor

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /data thor \
    && mkdir -p /data && chown thor /data
COPY --from=build /usr/local/bin/thor /usr/local/bin/thor
USER thor
VOLUME ["/data"]
ENV THOR_ADDR=0.0.0.0:8080 THOR_DATA_DIR=/data THOR_LOG_JSON=true
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s CMD curl -fs http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["thor"]
CMD ["serve"]
