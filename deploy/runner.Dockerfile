# syntax=docker/dockerfile:1
# The runner: nas-runner with libtorch 2.11.0 (the version tch 0.24 binds) from the torch==2.11.0
# wheels on PyPI, fetched by the same script developers use. One file for both variants, so the
# CUDA image shares every step with the CPU one except the libtorch download and the cargo feature.
#   CPU:   docker build -f deploy/runner.Dockerfile -t nas-runner:dev .
#   CUDA:  docker build -f deploy/runner.Dockerfile --build-arg TORCH=cuda -t nas-runner:dev-cuda .
# The CUDA variant adds the nvidia-* CUDA 13 wheels (cuBLAS, cuDNN, NCCL, ...); the GPU driver
# (libcuda.so, R580 or newer) is mounted by the NVIDIA container toolkit at run time.
ARG RUST_VERSION=1.95
# cpu or cuda
ARG TORCH=cpu

FROM rust:${RUST_VERSION}-bookworm AS build
ARG TORCH
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-pip cmake clang \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# libtorch before the sources, so its (large) layer survives every source change.
COPY scripts/bootstrap-libtorch.sh scripts/
RUN scripts/bootstrap-libtorch.sh --${TORCH}
COPY . .
# Line tables stay out of the image binary; symbol names stay for backtraces.
ENV CARGO_PROFILE_RELEASE_STRIP=debuginfo
# COPY keeps the sources' mtimes, so cargo could take a cached build of our own crates in the
# target cache for fresh: they are rebuilt every time (dependencies stay cached).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    features=""; if [ "$TORCH" = cuda ]; then features="--features cuda"; fi \
 && cargo clean --release -p nas-api -p nas-runner \
 && cargo build --release --locked -p nas-runner $features \
 && install -D -m 0755 target/release/nas-runner /out/nas-runner \
 && mkdir -p /out/libtorch \
 && cp -a .libtorch/${TORCH}/torch /out/libtorch/ \
 && if [ -d .libtorch/${TORCH}/nvidia ]; then cp -a .libtorch/${TORCH}/nvidia /out/libtorch/; fi \
 && rm -rf /out/libtorch/torch/include /out/libtorch/torch/share /out/libtorch/torch/test

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates libstdc++6 libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 65532 --user-group --no-create-home --home-dir /nonexistent nonroot
# The wheel layout (torch/ beside nvidia/) is kept: libtorch's own $ORIGIN rpaths rely on it.
COPY --from=build /out/libtorch /opt/libtorch
COPY --from=build /out/nas-runner /usr/local/bin/nas-runner
# The binary's baked rpath points into the build stage; this one is searched first.
ENV LD_LIBRARY_PATH=/opt/libtorch/torch/lib
# Every library resolves (the CUDA build loads without a GPU: libcuda is opened lazily).
RUN nas-runner --help >/dev/null
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/nas-runner"]

FROM runtime AS runner-cpu

FROM runtime AS runner-cuda
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

FROM runner-${TORCH}
