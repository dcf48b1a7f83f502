#!/usr/bin/env bash
# syncbn-train's command line: bad input exits 2 with a message naming what was wrong, where
# (file:line, or the option when the value came from the command line) and what was expected.
# Config errors are found before any training (and before MPI starts), so none of these runs
# trains. Optionally also syncbn-quantize's option checks.
# Usage: cli_test.sh SYNCBN_TRAIN_BINARY [SYNCBN_QUANTIZE_BINARY]
set -uo pipefail
train=$1 quantize=${2:-} failures=0
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
envs=()  # extra environment for the next expect
expect() {  # expect NAME STATUS REGEX -- ARGS...
  local name=$1 want=$2 regex=$3; shift 4
  local out status
  # timeout: before the fix a FIFO as the config blocked forever.
  out=$(env "${envs[@]}" timeout 20 "$train" "$@" 2>&1); status=$?
  if [[ $status -eq $want && $out =~ $regex ]]; then echo "ok   - $name"
  else echo "FAIL - $name: status $status, output: $out" >&2; failures=$((failures + 1)); fi
}
printf 'train:\n  batch_szie: 3\n' > "$work/typo.yaml"
printf 'model: {norm: [1, 2\n' > "$work/broken.yaml"
printf 'train:\n  epochs: 1\n  epochs: 7\n' > "$work/dup.yaml"
printf 'model:\n  stages: []\n' > "$work/stages.yaml"
mkfifo "$work/fifo"
expect "unknown option" 2 "unrecognised option '--bogus'" -- --bogus
expect "missing --config" 2 "config" -- --epochs 1
expect "unknown key with suggestion" 2 "typo.yaml:2: train.batch_szie: unknown key \(did you mean 'train.batch_size'\?\)" -- -c "$work/typo.yaml"
expect "malformed YAML" 2 "broken.yaml:[0-9]+: malformed YAML" -- -c "$work/broken.yaml"
expect "missing file" 2 "cannot read config file" -- -c "$work/nope.yaml"
expect "bad override type" 2 "--epochs many: train.epochs: expected an integer, got 'many'" -- -c "$work/typo.yaml" --set train.batch_size=1 --epochs many
expect "bad --progress" 2 "--progress: expected auto, bar or lines" -- -c configs/tiny.yaml --progress sometimes
expect "help" 0 "--checkpoint-dir" -- --help

# Duplicate keys, and config paths that are not files.
expect "duplicate key" 2 "dup.yaml:3: train.epochs: duplicate key \(first at line 2\)" -- -c "$work/dup.yaml"
expect "directory as config" 2 "config file '.*' is a directory, not a config file" -- -c "$work"
expect "FIFO as config" 2 "config file '.*fifo' is not a regular file" -- -c "$work/fifo"
# Numbers: non-finite, out of range, or too large for what they are converted to.
expect "infinite weight decay" 2 "--set optimizer.weight_decay=.inf: optimizer.weight_decay: expected a finite number, got '.inf'" -- -c configs/tiny.yaml --set optimizer.weight_decay=.inf
expect "NaN bn_momentum" 2 "--set model.bn_momentum=.nan: model.bn_momentum: expected a finite number" -- -c configs/tiny.yaml --set model.bn_momentum=.nan
expect "bn_momentum above 1" 2 "model.bn_momentum: expected a number <= 1" -- -c configs/tiny.yaml --set model.bn_momentum=2
expect "infinite bucket" 2 "train.bucket_mb: expected a finite number" -- -c configs/tiny.yaml --set train.bucket_mb=.inf
expect "threads past int" 2 "--threads 2147483648: train.threads: expected a value in \[1, 1024\], got '2147483648'" -- -c configs/tiny.yaml --threads 2147483648
expect "threads wrapping to 1" 2 "--threads 4294967297: train.threads: expected a value in \[1, 1024\]" -- -c configs/tiny.yaml --threads 4294967297
expect "huge batch size" 2 "--batch-size 9223372036854775807: train.batch_size: expected a value in \[1, 16777216\]" -- -c configs/tiny.yaml --batch-size 9223372036854775807
expect "huge synthetic set" 2 "data.synthetic_train_size: expected a value in \[1, 100000000\]" -- -c configs/tiny.yaml --set data.synthetic_train_size=9223372036854775807
# The model: no stages; group:G that does not divide the channels.
expect "empty stages" 2 "stages.yaml:2: model.stages: expected at least one stage" -- -c "$work/stages.yaml"
expect "group:3 vs 8 channels" 2 "--norm group:3: model.norm: group:3 does not divide model.stem_channels \(8\)" -- -c configs/tiny.yaml --norm group:3
# Values from the command line are cited as the option, not as a line of the file.
expect "--epochs 0" 2 "--epochs 0: train.epochs: expected a value >= 1, got '0'" -- -c configs/tiny.yaml --epochs 0
expect "--set dataset" 2 "--set data.dataset=imagenet: data.dataset: expected one of fashion_mnist \| synthetic \| npy \| cifar10 \| cifar100 \| image_folder" -- -c configs/tiny.yaml --set data.dataset=imagenet
expect "empty checkpoint dir" 2 "--checkpoint-dir : train.checkpoint_dir: expected a non-empty path" -- -c configs/tiny.yaml --checkpoint-dir ''
envs=(SYNCBN_COLLECTIVE_TIMEOUT=0.001)
expect "sub-second collective timeout" 2 "SYNCBN_COLLECTIVE_TIMEOUT: expected at least 1 second" -- -c configs/tiny.yaml --epochs 1 --checkpoint-dir "$work/ckpt"
envs=()
# A data set with no training samples trains nothing: an error, not "done" and exit 0.
mkdir "$work/empty_data"
for split in train t10k; do
  printf '\0\0\10\3\0\0\0\0\0\0\0\34\0\0\0\34' | gzip > "$work/empty_data/$split-images-idx3-ubyte.gz"
  printf '\0\0\10\1\0\0\0\0' | gzip > "$work/empty_data/$split-labels-idx1-ubyte.gz"
done
expect "empty training set" 2 "the training split of data.dataset 'fashion_mnist' in data.dir '.*empty_data' has 0 samples" -- -c configs/fashion_resnet.yaml --data-dir "$work/empty_data" --checkpoint-dir "$work/ckpt_empty"
# A model too large for memory (3.6 PB of conv weights: beyond any address space) names the tensor.
expect "oversized model" 1 "out of memory: cannot allocate [0-9.]+ GiB for a float32 tensor of shape \[100000000000000, 1, 3, 3\]" -- -c configs/tiny.yaml --norm batch --set model.stem_channels=100000000000000 --checkpoint-dir "$work/ckpt_big"
# --init-from: a file that does not fit is refused before training, every bad key listed; and
# the start options that exclude or need each other. The file: a tiny.yaml model, --export'ed.
if "$train" -c configs/tiny.yaml --epochs 1 --max-steps 1 --checkpoint-dir "$work/ckpt_export" \
    --export "$work/tiny.safetensors" > "$work/export.txt" 2>&1; then echo "ok   - --export tiny.yaml"
else echo "FAIL - --export tiny.yaml: $(cat "$work/export.txt")" >&2; failures=$((failures + 1)); fi
expect "--init-from wrong shapes" 2 "--init-from: .*tiny.safetensors: does not fit this model:.*'bn1.running_mean': checkpoint has \[8\] float32, module expects \[4\] float32.*'conv1.weight': checkpoint has \[8, 1, 3, 3\] float32, module expects \[4, 1, 3, 3\].*missing key 'layer1.0.downsample.0.weight'" -- -c configs/tiny.yaml --set model.stem_channels=4 --init-from "$work/tiny.safetensors"
expect "--init-from missing and unexpected keys" 2 "does not fit this model:.*missing key 'layer1.1.conv1.weight'.*unexpected key 'layer2.0.conv1.weight'" -- -c configs/tiny.yaml --set "model.stages=[{channels: 8, blocks: 2, stride: 1}]" --init-from "$work/tiny.safetensors"
expect "--init-from not safetensors" 2 "--init-from: .*tiny.yaml" -- -c configs/tiny.yaml --init-from configs/tiny.yaml
expect "--init-from missing file" 2 "--init-from: .*nothing.safetensors" -- -c configs/tiny.yaml --init-from "$work/nothing.safetensors"
expect "--init-from with --resume" 2 "--init-from and --resume exclude each other" -- -c configs/tiny.yaml --init-from "$work/tiny.safetensors" --resume
expect "--eval-only alone" 2 "--eval-only needs the weights to evaluate: --init-from or --resume" -- -c configs/tiny.yaml --eval-only
expect "--eval-only --resume, no checkpoint" 1 "--resume: no checkpoint in .*ckpt_none" -- -c configs/tiny.yaml --eval-only --resume --checkpoint-dir "$work/ckpt_none"
# --print-config: the shortest form of each number (0.05, not 0.050000000000000003).
expect "print-config numbers" 0 $'lr: 0\\.05\n' -- -c configs/tiny.yaml --print-config

if [[ -n $quantize ]]; then
  out=$("$quantize" -c configs/tiny.yaml --checkpoint "$work/none" --threads 4294967297 2>&1); status=$?
  if [[ $status -eq 2 && $out =~ "--threads must be in [1, 1024], got 4294967297" ]]; then
    echo "ok   - syncbn-quantize --threads 4294967297"
  else echo "FAIL - syncbn-quantize --threads: status $status, output: $out" >&2; failures=$((failures + 1)); fi
fi
# Every rank of a launched job runs the same command line: a usage or config error is printed by
# the launcher's rank 0 only (here a stand-in rank 1 of 2), with the same exit status, 2.
cases=("$train --bogus" "$train -c $work/typo.yaml")
[[ -n $quantize ]] && cases+=("$quantize --bogus" "$quantize -c $work/typo.yaml --checkpoint none")
for words in "${cases[@]}"; do
  # shellcheck disable=SC2086  # a program and its arguments, as words
  out=$(OMPI_COMM_WORLD_RANK=1 OMPI_COMM_WORLD_SIZE=2 timeout 20 $words 2>&1); status=$?
  rest=${words#* }; name="$(basename "${words%% *}") ${rest//$work\//}"
  if [[ $status -eq 2 && -z $out ]]; then echo "ok   - silent on rank 1 of 2: $name"
  else echo "FAIL - $name on rank 1 of 2: status $status, output: $out" >&2; failures=$((failures + 1)); fi
done
exit $((failures > 0))
