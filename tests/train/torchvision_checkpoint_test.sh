#!/usr/bin/env bash
# A ResNet-18 trained by syncbn-train (configs/zoo/resnet18.yaml on Fashion-MNIST, 1 channel,
# 10 classes) under mpirun -np 2 with SyncBatchNorm is a torchvision model: its checkpoint,
# without the optimizer keys, loads strictly into torchvision.models.resnet18(num_classes=10)
# with conv1 = Conv2d(1, 64, 7, 2, 3, bias=False), and PyTorch's eval accuracy and loss on the
# same test images agree with what syncbn-train reported. Short: a few steps on a slice of the
# data (a full epoch is a run by hand: README "Configs"). Skipped (77) without torch and torchvision in
# /usr/bin/python3, or without Fashion-MNIST.
# Usage: torchvision_checkpoint_test.sh SYNCBN_TRAIN_BINARY REPO_ROOT
set -euo pipefail
train=$(realpath "$1") root=$(realpath "$2")
here=$(dirname "$(realpath "$0")")
data=/usr/share/datasets/fashion-mnist tests=300
if ! /usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null; then
  echo "SKIP: /usr/bin/python3 has no torch/torchvision (apt-get install python3-torch python3-torchvision)"
  exit 77
fi
[[ -f $data/t10k-images-idx3-ubyte.gz ]] || { echo "SKIP: no Fashion-MNIST in $data"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; cat "$work/out.txt" >&2; exit 1; }

mpirun -np 2 --oversubscribe "$train" -c "$root/configs/zoo/resnet18.yaml" \
  --set 'model.input=[1, 28, 28]' --set model.num_classes=10 --set data.dataset=fashion_mnist \
  --set data.dir=$data --set data.limit_train=1024 --set data.limit_test=$tests \
  --epochs 1 --batch-size 32 --lr 0.02 --progress lines --checkpoint-dir "$work/ckpt" \
  > "$work/out.txt" 2>&1 || fail "syncbn-train exited $?"
grep -q "SyncBatchNorm across all 2 ranks" "$work/out.txt" || fail "no SyncBatchNorm in the run"
# "done: test accuracy 12.345678%, test loss 2.302585, ..."
reported=$(sed -n 's/^done: test accuracy \([0-9.]*\)%, test loss \([0-9.]*\),.*/\1 \2/p' "$work/out.txt")
[[ -n $reported ]] || fail "no 'done:' line"
torch_says=$(/usr/bin/python3 "$here/torchvision_checkpoint.py" "$work/ckpt/last.safetensors" \
  "$data" $tests) || fail "PyTorch could not load or evaluate the checkpoint"
echo "syncbn-train: accuracy % and loss $reported; torchvision: $torch_says"
# One image of 300 may flip where two logits nearly tie; the loss agrees to float rounding.
/usr/bin/python3 - "$reported" "$torch_says" $tests <<'PY' || fail "the two evaluations differ"
import sys
acc, loss = (float(v) for v in sys.argv[1].split())
_, torch_acc, _, torch_loss = sys.argv[2].split()
n = int(sys.argv[3])
assert abs(acc / 100 - float(torch_acc)) <= 1.0 / n + 1e-9, (acc, torch_acc)
assert abs(loss - float(torch_loss)) <= 1e-4 * max(1.0, abs(loss)), (loss, torch_loss)
PY
echo "ok: the checkpoint is a torchvision resnet18 with syncbn-train's accuracy and loss"
