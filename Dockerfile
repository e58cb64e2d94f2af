# syntax=docker/dockerfile:1
# The Portcullis server image: the `portcullis` binary on Debian slim, run as a non-root user.
#
#   docker build -t portcullis .
#   docker run --rm portcullis keys generate    # the entry point is the binary: a Fernet key
#
# See "Deploy" in README.md for the whole stack (docker-compose.yml).

# ---- build ----------------------------------------------------------------------------------
# The same Debian release as the runtime stage, so the binary links against the glibc it runs on.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Only what the server is compiled from: the tests, fuzz targets and scripts stay out, so
# changing them does not invalidate this layer.
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
# Cargo's registry and the target directory are BuildKit cache mounts: a rebuild after a source
# change recompiles Portcullis only, not its dependencies. The cache is not part of any layer,
# hence the copy out of it.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin portcullis \
    && install -D -m 0755 target/release/portcullis /out/portcullis

# ---- runtime --------------------------------------------------------------------------------
FROM debian:bookworm-slim
# CA certificates: providers, CIMD documents and https backends are verified against the
# system's roots. Nothing else is installed; the migrations, templates and stylesheet are
# compiled into the binary.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 portcullis \
    && useradd --system --uid 10001 --gid portcullis --home-dir /var/lib/portcullis \
        --create-home --shell /usr/sbin/nologin portcullis
COPY --from=build /out/portcullis /usr/local/bin/portcullis
USER portcullis:portcullis
# The working directory is the user's own: a SQLite database or a development key written with
# the defaults lands here (mount a volume to keep them).
WORKDIR /var/lib/portcullis
# Listen on every interface of the container; PORTCULLIS_BIND overrides it.
ENV PORTCULLIS_BIND=0.0.0.0:8080
EXPOSE 8080
# Ready = serving and its database answering. No curl in the image: bash speaks HTTP over
# /dev/tcp to the address Portcullis is bound to (0.0.0.0 reaches the container's own).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 CMD ["bash", "-c", "addr=${PORTCULLIS_BIND:-0.0.0.0:8080}; exec 3<>/dev/tcp/${addr%:*}/${addr##*:} && printf 'GET /health/ready HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && read -r _ status _ <&3 && [ \"$status\" = 200 ]"]
ENTRYPOINT ["portcullis"]
CMD ["serve"]
