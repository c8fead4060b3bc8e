# ladder as a container: a multi-stage build into a small runtime image
# that runs as an unprivileged user. Configure with LADDER_* variables
# (every config key has one; secrets also as *_FILE), mount the data
# directory at /var/lib/ladder and the keyring's key-encryption key as a
# secret file. See README "Deployment" and compose.yaml.

# --- build -----------------------------------------------------------------
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so a code change does not rebuild them. Built without
# the `demo` feature: the fake providers stay out of the production binary.
COPY Cargo.toml Cargo.lock rust-toolchain.toml ./
COPY crates crates
COPY examples examples
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p ladder --no-default-features \
    && install -D -m 0755 target/release/ladder /out/ladder

# --- run -------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 ladder \
    && useradd --system --uid 10001 --gid ladder --home-dir /var/lib/ladder --shell /usr/sbin/nologin ladder \
    && install -d -m 0700 -o ladder -g ladder /var/lib/ladder /var/lib/ladder/keys
COPY --from=build /out/ladder /usr/local/bin/ladder
COPY --from=build /src/examples /usr/share/ladder/examples
USER 10001:10001
WORKDIR /var/lib/ladder
# No demo tenant in an image: its keys would be printed to the logs. The
# environment outranks a mounted config file: to set these keys in a file,
# unset them here (`-e LADDER_LISTEN=` is not enough; override the ENV).
ENV LADDER_LISTEN=0.0.0.0:7878 \
    LADDER_DATA_DIR=/var/lib/ladder \
    LADDER_LOG_FORMAT=json \
    LADDER_DEMO_TENANT=false
EXPOSE 7878
VOLUME ["/var/lib/ladder"]
HEALTHCHECK --interval=10s --timeout=4s --start-period=10s --retries=3 \
    CMD ["ladder", "health"]
ENTRYPOINT ["ladder"]
CMD ["serve"]
