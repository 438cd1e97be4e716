# syntax=docker/dockerfile:1
# The runner, CUDA build: nas-runner built with `--features cuda` against libtorch 2.11.0 from
# the torch==2.11.0 wheel set on PyPI (torch plus its nvidia-* CUDA 13 wheels: cuBLAS, cuDNN,
# NCCL, ...), the version tch 0.24 binds. The GPU driver (libcuda.so, R580 or newer for CUDA 13)
# is mounted by the NVIDIA container toolkit at run time; nothing else from NVIDIA is needed.
# Build from the repository root:  docker build -f deploy/runner-cuda.Dockerfile -t nas-runner:dev-cuda .
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-pip cmake clang \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN scripts/bootstrap-libtorch.sh --cuda
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p nas-runner --features cuda \
 && install -D -m 0755 target/release/nas-runner /out/nas-runner \
 && mkdir -p /out/libtorch && cp -a .libtorch/cuda/torch .libtorch/cuda/nvidia /out/libtorch/ \
 && rm -rf /out/libtorch/torch/include /out/libtorch/torch/share /out/libtorch/torch/test

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates libstdc++6 libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 65532 --user-group --no-create-home --home-dir /nonexistent nonroot
COPY --from=build /out/libtorch /opt/libtorch
COPY --from=build /out/nas-runner /usr/local/bin/nas-runner
# libtorch_cuda finds the nvidia-* libraries through its own $ORIGIN rpaths (wheel layout kept).
ENV LD_LIBRARY_PATH=/opt/libtorch/torch/lib \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/nas-runner"]
