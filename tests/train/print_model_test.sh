#!/usr/bin/env bash
# syncbn-train --print-model: runs without MPI, exits 0, and prints the tree, the conversion,
# the parameter count and the state_dict. For configs/zoo/resnet18.yaml (1 channel, 10 classes)
# the keys, their order and shapes and the parameter count are torchvision's resnet18 with a
# 1-channel conv1 (skipped, 77, when /usr/bin/python3 has no torch/torchvision).
# Usage: print_model_test.sh SYNCBN_TRAIN_BINARY REPO_ROOT
set -euo pipefail
train=$(realpath "$1") root=$(realpath "$2")
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; cat "$work/out.txt" >&2; exit 1; }

"$train" -c "$root/configs/tiny.yaml" --print-model > "$work/out.txt" 2>&1 || fail "exit $?"
for line in '^Sequential($' '^  (bn1): BatchNorm2d(8, eps=1e-05' '^conversion: on more than one rank, these 6 BatchNorm layers' \
            '^  layer2.0.downsample.1$' '^parameters: [0-9]' '^  bn1.num_batches_tracked \[\] int64$'; do
  grep -q -- "$line" "$work/out.txt" || fail "no line matching '$line'"
done
"$train" -c "$root/configs/tiny.yaml" --norm batch --print-model > "$work/out.txt" 2>&1 || fail "exit $?"
grep -q '^conversion: none (6 BatchNorm layers stay as written)' "$work/out.txt" ||
  fail "--norm batch still converts"
"$train" -c "$root/configs/tiny.yaml" --set model.sync_group_size=2 --print-model > "$work/out.txt" 2>&1 ||
  fail "exit $?"
grep -q 'become SyncBatchNorm synchronised in groups of 2 consecutive ranks:$' "$work/out.txt" ||
  fail "sync_group_size 2 not shown"
echo "ok: --print-model prints the tree, the conversion and the state_dict"

if ! /usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null; then
  echo "SKIP: /usr/bin/python3 has no torch/torchvision: resnet18 not compared with torchvision"
  exit 77
fi
"$train" -c "$root/configs/zoo/resnet18.yaml" --set 'model.input=[1, 28, 28]' \
  --set model.num_classes=10 --print-model > "$work/out.txt" 2>&1 || fail "exit $?"
/usr/bin/python3 - "$work/out.txt" <<'PY' || fail "not torchvision's resnet18"
import sys, torch, torchvision
model = torchvision.models.resnet18(num_classes=10)
model.conv1 = torch.nn.Conv2d(1, 64, 7, 2, 3, bias=False)
want = [f"{k} {list(v.shape)}".replace("[]", "[] int64" if v.dtype == torch.int64 else "[]")
        for k, v in model.state_dict().items()]
lines = open(sys.argv[1]).read().splitlines()
got = [l.strip() for l in lines[lines.index("state_dict:") + 1:]]
assert got == want, "\n".join(f"{g!r} vs {w!r}" for g, w in zip(got, want) if g != w)
count = sum(p.numel() for p in model.parameters())
assert f"parameters: {count}" in lines, count
print(f"ok: {len(want)} state_dict entries and {count} parameters, as torchvision's")
PY
