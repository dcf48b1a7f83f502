#!/usr/bin/env bash
# --init-from, --eval-only and --export against PyTorch (tests/train/pytorch_model.py, the twin
# of tests/train/mlp_init.yaml): a state_dict PyTorch trained and wrote evaluates in
# syncbn-train --eval-only to PyTorch's own count of correct test images and loss, in one
# process and under mpirun -np 2 (SyncBatchNorm, sharded evaluation); and a model syncbn-train
# trained from it (np 2, SyncBatchNorm) and --export'ed loads with load_state_dict(strict=True)
# and evaluates in PyTorch to what syncbn-train reported. Skipped (77) without torch in
# /usr/bin/python3 or without Fashion-MNIST.
# Usage: init_export_test.sh SYNCBN_TRAIN_BINARY REPO_ROOT
set -euo pipefail
train=$(realpath "$1") root=$(realpath "$2")
twin="$root/tests/train/pytorch_model.py" config="$root/tests/train/mlp_init.yaml"
data=/usr/share/datasets/fashion-mnist tests=500
[[ -f $data/t10k-images-idx3-ubyte.gz ]] || { echo "SKIP: no Fashion-MNIST in $data"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; cat "$work/out.txt" >&2 2>/dev/null; exit 1; }
common=(-c "$config" --set data.dir=$data --set data.limit_test=$tests --progress lines)

status=0; torch_says=$(/usr/bin/python3 "$twin" make "$work/torch.safetensors" $data $tests) || status=$?
[[ $status -eq 77 ]] && { echo "$torch_says"; exit 77; }
[[ $status -eq 0 ]] || fail "pytorch_model.py make exited $status"
echo "PyTorch: $torch_says"

# Compares "correct C samples K loss L" with the eval_only record in metrics.jsonl: the same
# count of correct images, the loss within 1e-5 relative.
same() {  # same WHAT METRICS_FILE "correct C samples K loss L"
  /usr/bin/python3 - "$@" <<'PY' || fail "$1: the evaluations differ"
import json, sys
what, metrics, theirs = sys.argv[1], sys.argv[2], sys.argv[3].split()
records = [json.loads(line) for line in open(metrics)]
ours = [r for r in records if r.get("eval_only")] or records
r = ours[-1]
correct, samples, loss = int(theirs[1]), int(theirs[3]), float(theirs[5])
n = r.get("test_samples", samples)
assert n == samples, (what, n, samples)
got = round(r["test_accuracy"] * samples)
print(f"{what}: syncbn {got}/{samples} correct, loss {r['test_loss']}; PyTorch {correct}, {loss}")
assert got == correct, (what, got, correct)
assert abs(r["test_loss"] - loss) <= 1e-5 * abs(loss), (what, r["test_loss"], loss)
PY
}

# 1. PyTorch's weights, evaluated by syncbn-train: one process, then two ranks.
"$train" "${common[@]}" --init-from "$work/torch.safetensors" --eval-only \
  --checkpoint-dir "$work/eval1" > "$work/out.txt" 2>&1 || fail "--eval-only exited $?"
grep -q "^eval only: test accuracy" "$work/out.txt" || fail "no 'eval only:' line"
[[ ! -e $work/eval1/last.safetensors ]] || fail "--eval-only wrote a checkpoint"
same "eval-only, 1 process" "$work/eval1/metrics.jsonl" "$torch_says"
mpirun -np 2 --oversubscribe "$train" "${common[@]}" --init-from "$work/torch.safetensors" \
  --eval-only --checkpoint-dir "$work/eval2" > "$work/out.txt" 2>&1 || fail "np 2 --eval-only exited $?"
grep -q "SyncBatchNorm across all 2 ranks" "$work/out.txt" || fail "no SyncBatchNorm at np 2"
same "eval-only, 2 ranks" "$work/eval2/metrics.jsonl" "$torch_says"

# 2. Trained on from PyTorch's weights at np 2 with SyncBatchNorm, exported, loaded by PyTorch.
mpirun -np 2 --oversubscribe "$train" "${common[@]}" --init-from "$work/torch.safetensors" \
  --set data.limit_train=512 --batch-size 32 --checkpoint-dir "$work/run" \
  --export "$work/exported.safetensors" > "$work/out.txt" 2>&1 || fail "training exited $?"
grep -q "^exported the model's state_dict" "$work/out.txt" || fail "no export reported"
torch_export=$(/usr/bin/python3 "$twin" eval "$work/exported.safetensors" $data $tests) ||
  fail "PyTorch could not load the export strictly"
same "exported after training" "$work/run/metrics.jsonl" "$torch_export"
echo "ok: --init-from, --eval-only and --export agree with PyTorch"
