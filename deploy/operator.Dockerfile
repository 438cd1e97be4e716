# syntax=docker/dockerfile:1
# The operator: a static (musl) binary on distroless/static, running as a non-root user.
# Build from the repository root:  docker build -f deploy/operator.Dockerfile -t nas-operator:dev .
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
# musl-tools for the static target; cmake, clang and perl for aws-lc-sys (kube's TLS backend).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends musl-tools cmake clang perl \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
# Line tables stay out of the image binary; symbol names stay for backtraces.
ENV CARGO_PROFILE_RELEASE_STRIP=debuginfo
# The operator does not link libtorch; LIBTORCH is never read while building it alone.
# COPY keeps the sources' mtimes, so cargo could take a cached build of our own crates in the
# target cache for fresh: they are rebuilt every time (dependencies stay cached).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo clean --release --target x86_64-unknown-linux-musl -p nas-api -p nas-operator \
 && cargo build --release --locked -p nas-operator --target x86_64-unknown-linux-musl \
 && install -D -m 0755 target/x86_64-unknown-linux-musl/release/nas-operator /out/nas-operator \
 && /out/nas-operator --help >/dev/null

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/nas-operator /usr/local/bin/nas-operator
# 65532 is distroless's "nonroot".
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/nas-operator"]
