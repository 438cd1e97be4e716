# syntax=docker/dockerfile:1
# The runner, CPU build: nas-runner with libtorch 2.11.0 (CPU) from the torch wheel on PyPI.
# Build from the repository root:  docker build -f deploy/runner.Dockerfile -t nas-runner:dev .
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-pip cmake clang \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# libtorch comes from the same script developers use (torch==2.11.0 wheel, CPU variant).
RUN scripts/bootstrap-libtorch.sh --cpu
# The wheel layout (torch/ beside nvidia/) is kept: libtorch's own rpaths rely on it.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p nas-runner \
 && install -D -m 0755 target/release/nas-runner /out/nas-runner \
 && mkdir -p /out/libtorch && cp -a .libtorch/cpu/torch .libtorch/cpu/nvidia /out/libtorch/ \
 && rm -rf /out/libtorch/torch/include /out/libtorch/torch/share /out/libtorch/torch/test

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates libstdc++6 libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 65532 --user-group --no-create-home --home-dir /nonexistent nonroot
COPY --from=build /out/libtorch /opt/libtorch
COPY --from=build /out/nas-runner /usr/local/bin/nas-runner
# The binary's baked rpath points into the build stage; this one is searched first.
ENV LD_LIBRARY_PATH=/opt/libtorch/torch/lib
RUN nas-runner --help >/dev/null
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/nas-runner"]
