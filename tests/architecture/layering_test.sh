#!/usr/bin/env bash
# The layers in source form (CMake enforces them at link time; this catches a header-only
# reach upwards, and a backend header outside its backend). Fails naming file:line.
#   1. mpi.h, nccl.h and CUDA headers only under src/dist/mpi and src/dist/nccl;
#      cblas.h and oneDNN only under src/nn/layers.
#   2. each area includes syncbn headers only of the areas below it (table below; every area may
#      use core: error.hpp, tensor.hpp, options.hpp).
# Usage: layering_test.sh SOURCE_DIR
set -uo pipefail
cd "$1" || exit 2
failures=0
report() { echo "FAIL: $*"; failures=$((failures + 1)); }

files_of() {  # the sources and public headers of area $1 (nn excludes nn/layers)
  local area=$1
  find "src/$area" "include/syncbn/$area" -name '*.[ch]pp' 2>/dev/null |
    if [[ $area == nn ]]; then grep -v '/nn/layers/'; else cat; fi
}

while IFS=: read -r file line text; do
  [[ $file == src/dist/mpi/* || $file == src/dist/nccl/* ]] || report "$file:$line: backend header: $text"
done < <(grep -rnE '#include <(mpi\.h|nccl\.h|cuda[a-z_]*\.h)>' src include)
while IFS=: read -r file line text; do
  [[ $file == src/nn/layers/* ]] || report "$file:$line: BLAS/oneDNN outside nn/layers: $text"
done < <(grep -rnE '#include <(cblas\.h|oneapi/dnnl)' src include)

# A relative include may not leave its area (quant once reached into nn's private headers).
while IFS=: read -r file line text; do
  target=$(realpath -m --relative-to=. "$(dirname "$file")/$(sed -E 's|.*"([^"]+)".*|\1|' <<<"$text")")
  [[ $(cut -d/ -f1-2 <<<"$target") == $(cut -d/ -f1-2 <<<"$file") ]] ||
    report "$file:$line: reaches into another area's private files: $text"
done < <(grep -rnE '#include "\.\./' src)

declare -A allowed=(
  [core]="" [io]="" [dist]="" [data]="io" [config]=""
  [nn]="dist" [nn/layers]="nn dist" [parallel]="nn dist" [quant]="nn dist"
  [builders]="config nn nn/layers data dist"
  [train]="builders parallel io dist config nn nn/layers data"
)
for area in "${!allowed[@]}"; do
  ok=" core error tensor options $area ${allowed[$area]} "
  while IFS=: read -r file line text; do
    used=$(sed -E 's|.*"syncbn/([a-z_]+(/layers)?)[/.].*|\1|' <<<"$text")
    [[ $used == nn && $text == *'"syncbn/nn/layers/'* ]] && used=nn/layers
    [[ $ok == *" $used "* ]] || report "$file:$line: area '$area' includes '$used': $text"
  done < <(files_of "$area" | xargs -r grep -nH '#include "syncbn/')
done
((failures == 0)) && echo "ok: every include respects the layers" || exit 1
