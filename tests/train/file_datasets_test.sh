#!/usr/bin/env bash
# Each file data set trains end to end through syncbn-train on files a Python script (NumPy and
# PIL, not syncbn) made: the run succeeds and learns the easy classes (test accuracy >= 60%,
# chance is 25%). With NP=2 it runs under mpirun with SyncBatchNorm across the two ranks.
# FORMAT bad_label: npy files with a label outside [0, 4) make the run fail naming the file.
# Usage: file_datasets_test.sh SYNCBN_TRAIN_BINARY FORMAT NP
set -euo pipefail
train=$(realpath "$1") format=$2 np=$3
here=$(cd "$(dirname "$0")" && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cd "$work"
fail() { echo "FAIL: $*" >&2; [[ -f out.txt ]] && cat out.txt >&2; exit 1; }

/usr/bin/python3 -c "import numpy, PIL" 2>/dev/null || { echo "skip: NumPy or PIL missing"; exit 77; }
bad=0
[[ $format == bad_label ]] && { bad=1; format=npy; }
/usr/bin/python3 "$here/make_file_datasets.py" "$format" "$work/data"
if ((bad)); then
  /usr/bin/python3 -c "import numpy as np; np.save('$work/data/train_labels.npy', np.array([0, 7] + [1] * 254))"
fi

case $format in
  npy) input="[1, 8, 8]" classes=4 ;;
  cifar10) input="[3, 32, 32]" classes=10 ;;
  cifar100) input="[3, 32, 32]" classes=100 ;;
  image_folder) input="[3, 8, 8]" classes=4 ;;
  *) echo "unknown format '$format'" >&2; exit 2 ;;
esac
cat > config.yaml <<YAML
model:
  input: $input
  num_classes: $classes
  norm: sync_batch
  stem_channels: 8
  stages:
    - {channels: 8, blocks: 1, stride: 2}
    - {channels: 16, blocks: 1, stride: 2}
data: {dataset: $format, dir: $work/data}
optimizer: {lr: 0.05, momentum: 0.9, nesterov: true, weight_decay: 0.0001}
schedule: {name: cosine, warmup_epochs: 0}
train: {batch_size: 16, epochs: 8, seed: 1, checkpoint_dir: $work/ckpt}
YAML

launch=()
[[ $np -gt 1 ]] && launch=(mpirun -np "$np" --oversubscribe)
status=0
"${launch[@]}" "$train" --config config.yaml --progress lines > out.txt 2>&1 || status=$?
if ((bad)); then
  [[ $status -ne 0 ]] || fail "a label of 7 with 4 classes trained"
  grep -q "$work/data/train_labels.npy: label 7 at index 1 is outside \[0, 4)" out.txt ||
    fail "the error does not name the file and the label"
  echo "ok: a bad label is refused naming the file"
  exit 0
fi
[[ $status -eq 0 ]] || fail "syncbn-train exited $status"
done_line=$(grep '^done: test accuracy' out.txt) || fail "no 'done:' line"
grep -q "world size $np" <<< "$done_line" || fail "not world size $np: $done_line"
if [[ $np -gt 1 ]]; then
  grep -Eq ' [1-9][0-9]* SyncBatchNorm layers' <<< "$done_line" || fail "no SyncBatchNorm layers"
fi
accuracy=$(sed -E 's/^done: test accuracy ([0-9.]+)%.*/\1/' <<< "$done_line")
awk -v a="$accuracy" 'BEGIN { exit !(a >= 60) }' || fail "test accuracy $accuracy% < 60%"
echo "ok: $format at np=$np: $done_line"
