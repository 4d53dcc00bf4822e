# syntax=docker/dockerfile:1
# Build: docker build -t thor .   Run: docker run -p 8080:8080 -v thor-data:/data thor
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin thor && strip target/release/thor

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /data thor \
    && mkdir -p /data && chown thor /data
COPY --from=build /src/target/release/thor /usr/local/bin/thor
USER thor
VOLUME ["/data"]
ENV THOR_ADDR=0.0.0.0:8080 THOR_DATA_DIR=/data THOR_LOG_JSON=true
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s CMD curl -fs http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["thor"]
CMD ["serve"]
