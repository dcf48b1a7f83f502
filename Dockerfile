# syncbn on Debian bookworm: the same scripts/setup that CI runs installs and builds everything.
#   docker build -t syncbn .
#   docker run --rm syncbn                       # the default training run (2 ranks)
#   docker run --rm syncbn scripts/test          # the whole test suite
FROM debian:bookworm
ENV DEBIAN_FRONTEND=noninteractive \
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends ca-certificates git sudo \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/syncbn
COPY . .
# Portable binaries: the image may run on a different CPU than the one that built it.
RUN scripts/setup --portable
CMD ["scripts/train"]
