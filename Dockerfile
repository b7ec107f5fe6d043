# syntax=docker/dockerfile:1
#
# The one `cryptoutil` binary in a small runtime image: distroless (glibc, CA roots, no shell),
# non-root (uid/gid 65532). Used by every compose file under deployments/ (docs/deployment.md).
#
#   docker build -t cryptoutil:dev .
#   docker build --build-arg CARGO_FEATURES=fips -t cryptoutil:fips .   # the FIPS build
#
# The FIPS build (docs/security.md, "FIPS build") compiles the AWS-LC FIPS module from source
# (aws-lc-fips-sys), which needs CMake, Go and Perl in the builder: installed from Debian's
# packages below when CARGO_FEATURES names `fips`. Its binary refuses to start unless the module
# is in FIPS mode; `cryptoutil version --verbose` shows the module in the image.
#
# Not built on the project's own machines (they have no Docker engine); the compose files and
# configuration that use it are checked by `cargo test -p cryptoutil --test deployments`.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS builder
# Cargo features of the binary: empty, or `fips`.
ARG CARGO_FEATURES=""
WORKDIR /src
# The AWS-LC FIPS module's build tools (cmake, golang-go; perl and the C compilers are in the base
# image), only for the FIPS build.
RUN case ",${CARGO_FEATURES}," in \
      *,fips,*) apt-get update \
        && apt-get install -y --no-install-recommends cmake golang-go perl \
        && rm -rf /var/lib/apt/lists/* ;; \
    esac
# The base image pins the toolchain; rust-toolchain.toml is left out of the context
# (.dockerignore) so rustup downloads nothing during the build.
#
# Dependency caching: the cargo registry and the target directory are BuildKit cache mounts,
# so a source change recompiles only the workspace's own crates, not the dependencies.
RUN --mount=type=bind,target=/src,rw \
    --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git/db \
    --mount=type=cache,target=/cache/target \
    CARGO_TARGET_DIR=/cache/target AWS_LC_FIPS_SYS_USE_SYSTEM=0 \
      cargo build --release --locked -p cryptoutil --features "${CARGO_FEATURES}" \
    && install -D -m 0755 /cache/target/release/cryptoutil /out/bin/cryptoutil \
    && install -d -m 0750 /out/state/certs /out/state/data

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=builder /out/bin/cryptoutil /usr/local/bin/cryptoutil
# Directories the runtime user owns. A new named volume mounted on one of them starts with this
# owner, so the non-root servers can write their data and the one-shot `tls init-demo-ca` its
# certificates (keys 0600, owned by the same uid that reads them).
COPY --from=builder --chown=65532:65532 /out/state/ /var/lib/cryptoutil/
USER 65532:65532
WORKDIR /var/lib/cryptoutil/data
EXPOSE 8081 8082 8084 9081 9082 9084
ENTRYPOINT ["/usr/local/bin/cryptoutil"]
CMD ["kms", "server", "start", "--config", "/etc/cryptoutil/kms.yml"]
# The KMS's admin liveness probe (the default command). The admin listener requires a client
# certificate outside --dev, so the probe presents the demo client certificate; compose files
# override this for the other servers (Identity: port 9082).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/cryptoutil", "health", "https://127.0.0.1:9081/admin/v1/livez", \
         "--ca-cert", "/var/lib/cryptoutil/certs/ca/root.pem", \
         "--client-cert", "/var/lib/cryptoutil/certs/demo/cert.pem", \
         "--client-key", "/var/lib/cryptoutil/certs/demo/key.pem"]
