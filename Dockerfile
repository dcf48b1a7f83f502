# syncbn on Debian bookworm: the same scripts/setup that CI runs installs and builds everything.
#   docker build -t syncbn .
#   docker run --rm syncbn                       # the default training run (2 ranks)
#   docker run --rm syncbn launcher/launch.sh -n 2 configs/tiny.yaml --epochs 1
#   docker run --rm syncbn scripts/test -R 'BatchNorm|mpi_np2'   # part of the test suite
# .dockerignore keeps host build dirs out of the context (their CMakeCache.txt would stop the
# build). scripts/check-docker builds this image from a clean clone and runs it (CI does).
# OpenMPI's shared-memory transport copies between ranks with CMA (process_vm_readv), which a
# container without ptrace rights refuses: every rank would print "Read -1, expected ..., errno
# = 1" and fall back. OMPI_MCA_btl_vader_single_copy_mechanism=none (OpenMPI 4.1's name) copies
# through the shared segment from the start; `docker run --cap-add SYS_PTRACE` with
# OMPI_MCA_btl_vader_single_copy_mechanism=cma restores CMA for large messages.
FROM debian:bookworm
ENV DEBIAN_FRONTEND=noninteractive \
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
    OMPI_MCA_btl_vader_single_copy_mechanism=none
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends ca-certificates git sudo \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/syncbn
# Packages in a layer of their own: a source change rebuilds from the COPY below, not apt.
COPY scripts/setup scripts/setup
RUN scripts/setup --deps && rm -rf /var/lib/apt/lists/*
COPY . .
# Portable binaries: the image may run on a different CPU than the one that built it.
RUN scripts/setup --portable
CMD ["scripts/train"]
