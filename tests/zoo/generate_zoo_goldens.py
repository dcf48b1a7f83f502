#!/usr/bin/python3
"""Writes the PyTorch goldens of the model zoo (configs/zoo/*.yaml), read by zoo_test.cpp.

    /usr/bin/python3 tests/zoo/generate_zoo_goldens.py            # the committed goldens
    /usr/bin/python3 tests/zoo/generate_zoo_goldens.py --out DIR resnet18 resnet50

Each case of tests/zoo/cases.txt has a PyTorch twin here: torchvision's resnet18/resnet50, its
ResNet(Bottleneck, [1, 1, 1, 1]) for resnet50_shallow (resnet50.yaml with each stage's repeat
overridden to 1), and small torch.nn models written out below. With no names, every case's key
list and the safetensors of the `committed` cases are written into tests/zoo/goldens/
(deterministic: a rerun gives the same bytes). The `generated` cases (the ResNets, ~80-200 MB
each) are written at test time by a ctest fixture into the build tree. Exit 77 (skipped)
without torch or torchvision, saying which.

Per model, <name>.keys.txt: `# parameters N`, then `key dtype [d0,d1,...]` per state_dict entry.
<name>.safetensors ("__metadata__" holds lr, momentum, weight_decay, nesterov, overrides and
float32_stepped_distance, how far PyTorch's own float32 step lands from the goldens):
  initial/<key>  the state_dict loaded before the checks (BN affine randomised, the ResNets'
                 residual branches scaled down, running stats from one train-mode forward of
                 another batch), float32
  input, labels  the batch (float32, int64)
  eval_logits    eval-mode output on `input` from `initial`
  loss           train-mode cross-entropy on (input, labels), float64, shape [1]
  stepped/<key>  the state_dict after that train-mode forward, backward and one SGD step

PyTorch runs in float64 on the float32 values stored, so the goldens are PyTorch's semantics
without PyTorch's float32 rounding; stored results are rounded once to float32. The float32
run's distance from them is printed for reference.
"""
import argparse
import collections
import copy
import json
import math
import pathlib
import sys
import zlib

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "io"))

try:
    import numpy as np
    import torch
    from torch import nn
    import torchvision
except ImportError as error:
    print(f"zoo goldens need torch and torchvision ({error}): skipping")
    sys.exit(77)

from safetensors_interop import write as write_safetensors  # noqa: E402

SGD = dict(lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=False)
F64 = torch.float64
RELU_MARGIN = 1e-5  # see relu_margin
MAX_ATTEMPTS = 100


def read_cases():
    """tests/zoo/cases.txt: name config batch input num_classes goldens [override ...] (shared
    with the C++ test)."""
    cases = collections.OrderedDict()
    for line in (HERE / "cases.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, config, batch, shape, classes, where, *extra = line.split()
            cases[name] = dict(config=config, batch=int(batch),
                               input=[int(d) for d in shape.split(",")],
                               num_classes=int(classes), committed=where == "committed",
                               extra_overrides=extra)
    return cases


class BasicBlock(nn.Module):
    """torchvision's BasicBlock layout and names, for the CIFAR ResNet twin."""

    def __init__(self, inplanes, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class CifarResNet(nn.Module):
    """ResNet-20 of He et al. (3 stages x 3 BasicBlocks, 16/32/64), projection shortcuts."""

    def __init__(self, in_channels, num_classes, blocks=3, widths=(16, 32, 64)):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        inplanes = widths[0]
        for i, planes in enumerate(widths):
            stride = 1 if i == 0 else 2
            layer = [BasicBlock(inplanes, planes, stride)]
            layer += [BasicBlock(planes, planes, 1) for _ in range(blocks - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*layer))
            inplanes = planes
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def named(**layers):
    return nn.Sequential(collections.OrderedDict(layers))


def mlp_bn1d(c, k):
    return named(fc1=nn.Linear(c[0], 256), bn1=nn.BatchNorm1d(256), relu1=nn.ReLU(),
                 fc2=nn.Linear(256, 128), bn2=nn.BatchNorm1d(128), relu2=nn.ReLU(),
                 fc3=nn.Linear(128, k))


def conv1d_bn1d(c, k):
    return named(conv1=nn.Conv1d(c[0], 32, 5, padding=2, bias=False), bn1=nn.BatchNorm1d(32),
                 relu1=nn.ReLU(), pool1=nn.MaxPool1d(2),
                 conv2=nn.Conv1d(32, 64, 3, padding=1, bias=False), bn2=nn.BatchNorm1d(64),
                 relu2=nn.ReLU(), pool2=nn.MaxPool1d(3, stride=2, padding=1),
                 conv3=nn.Conv1d(64, 64, 3, stride=2, dilation=2), bn3=nn.BatchNorm1d(64),
                 relu3=nn.ReLU(), avgpool=nn.AdaptiveAvgPool1d(1), flatten=nn.Flatten(),
                 fc=nn.Linear(64, k))


def conv3d_bn3d(c, k):
    return named(conv1=nn.Conv3d(c[0], 8, 3, padding=1, bias=False), bn1=nn.BatchNorm3d(8),
                 relu1=nn.ReLU(), pool1=nn.MaxPool3d(2),
                 conv2=nn.Conv3d(8, 16, (3, 3, 3), stride=(1, 2, 2), padding=1),
                 bn2=nn.BatchNorm3d(16), relu2=nn.ReLU(),
                 pool2=nn.MaxPool3d((2, 3, 3), stride=2, padding=(0, 1, 1)),
                 avgpool=nn.AdaptiveAvgPool3d(1), flatten=nn.Flatten(), fc=nn.Linear(16, k))


TWINS = {
    "mlp_bn1d": mlp_bn1d,
    "conv1d_bn1d": conv1d_bn1d,
    "conv3d_bn3d": conv3d_bn3d,
    "cifar_resnet": lambda c, k: CifarResNet(c[0], k),
    "resnet18": lambda c, k: torchvision.models.resnet18(num_classes=k),
    "resnet50": lambda c, k: torchvision.models.resnet50(num_classes=k),
    # resnet50.yaml with every stage's repeat overridden to 1 (cases.txt)
    "resnet50_shallow": lambda c, k: torchvision.models.resnet.ResNet(
        torchvision.models.resnet.Bottleneck, [1, 1, 1, 1], num_classes=k),
}


def make_model(name, case):
    """The twin, seeded by its name, with BatchNorm weight and bias drawn away from 1 and 0."""
    torch.manual_seed(zlib.crc32(name.encode()))
    model = TWINS[name](case["input"], case["num_classes"])
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.2)
        scale_residual_branches(model)
    return model


def scale_residual_branches(model):
    """torchvision's ResNets: the last BatchNorm of each residual branch gets weight in [0.1,
    0.3]. torchvision's zero_init_residual sets it to 0 so each block starts as the identity;
    without that, the gradient explodes toward the stem at init (ResNet-50: the step moves
    conv1.weight by 40x its size, and PyTorch's own float32 step misses its float64 one by
    2e-2). Small but not 0, every parameter still gets a gradient."""
    for m in model.modules():
        if isinstance(m, torchvision.models.resnet.Bottleneck):
            m.bn3.weight.uniform_(0.1, 0.3)
        elif isinstance(m, torchvision.models.resnet.BasicBlock):
            m.bn2.weight.uniform_(0.1, 0.3)


def draw_batch(name, case, attempt):
    """Running stats from one train-mode forward of a warm-up batch; the batch to check."""
    model = make_model(name, case)
    torch.manual_seed(zlib.crc32(f"{name}/{attempt}".encode()))
    with torch.no_grad():
        model.train()
        model(torch.randn(case["batch"], *case["input"]) * 2 + 0.5)
    x = torch.randn(case["batch"], *case["input"])
    labels = torch.randint(case["num_classes"], (case["batch"],))
    return model, x, labels


def relu_margin(model, x):
    """Smallest |input| of any ReLU in a float64 train-mode forward. A float32 computation may
    put an input within its rounding error of 0 on the other side, which routes a whole
    gradient element differently (~1e-3 relative in the gradients below it): no implementation
    could meet the tolerances then, so such draws are not used."""
    model = copy.deepcopy(model).to(F64).train()
    smallest = [math.inf]

    def record(module, inputs, output):
        smallest[0] = min(smallest[0], inputs[0].detach().abs().min().item())

    for m in model.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
            m.register_forward_hook(record)
    with torch.no_grad():
        model(x.to(F64))
    return smallest[0]


def well_conditioned_batch(name, case):
    for attempt in range(MAX_ATTEMPTS):
        model, x, labels = draw_batch(name, case, attempt)
        margin = relu_margin(model, x)
        if margin >= RELU_MARGIN:
            print(f"{name}: draw {attempt}, smallest |ReLU input| {margin:.2e}")
            return model, x, labels
    sys.exit(f"{name}: no draw in {MAX_ATTEMPTS} keeps every ReLU input {RELU_MARGIN} from 0")


def run(model, state, x, labels):
    """eval logits, train loss and the state after one SGD step, in model's dtype."""
    model.load_state_dict(state)
    model.eval()
    with torch.no_grad():
        logits = model(x)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), **SGD)
    loss = nn.functional.cross_entropy(model(x), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return logits, loss.item(), model.state_dict()


def as_numpy(tensor):
    if tensor.dtype == torch.int64:
        return tensor.numpy().astype("<i8")
    return tensor.detach().to(torch.float32).numpy().astype("<f4")


def max_rel(a, b):
    return (a.double() - b.double()).abs().max().item() / max(b.double().abs().max().item(), 1e-30)


def goldens(name, case):
    model, x, labels = well_conditioned_batch(name, case)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    logits32, _, stepped32 = run(model, initial, x, labels)
    logits, loss, stepped = run(model.to(F64), initial, x.to(F64), labels)
    worst = max(max_rel(stepped32[k], v) for k, v in stepped.items() if v.is_floating_point())
    print(f"{name}: float32 PyTorch vs float64 goldens: logits {max_rel(logits32, logits):.2e}, "
          f"stepped state {worst:.2e} (max|a-b|/max|b|)")
    tensors = {"input": as_numpy(x), "labels": as_numpy(labels), "eval_logits": as_numpy(logits),
               "loss": np.array([loss], dtype="<f8")}
    tensors.update({f"initial/{k}": as_numpy(v) for k, v in initial.items()})
    tensors.update({f"stepped/{k}": as_numpy(v) for k, v in stepped.items()})
    return model, initial, tensors, worst


def overrides(case):
    dims = ", ".join(str(d) for d in case["input"])
    return [f"model.input=[{dims}]", f"model.num_classes={case['num_classes']}",
            *case["extra_overrides"]]


def key_list(model, initial):
    count = sum(p.numel() for p in model.parameters())
    lines = [f"# parameters {count}"]
    for key, value in initial.items():
        dtype = "int64" if value.dtype == torch.int64 else "float32"
        lines.append(f"{key} {dtype} [{','.join(str(d) for d in value.shape)}]")
    return "\n".join(lines) + "\n"


def write(out, name, case):
    model, initial, tensors, float32_distance = goldens(name, case)
    meta = {k: str(v).lower() if isinstance(v, bool) else repr(v) for k, v in SGD.items()}
    meta["float32_stepped_distance"] = repr(float32_distance)
    meta["overrides"] = json.dumps(overrides(case))
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.keys.txt").write_text(key_list(model, initial))
    if case["committed"] or out != HERE / "goldens":
        # Written beside then renamed: a test never reads half a file.
        partial = out / f"{name}.safetensors.partial"
        write_safetensors(partial, tensors, meta)
        partial.replace(out / f"{name}.safetensors")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=HERE / "goldens")
    parser.add_argument("names", nargs="*", help="models to write (default: all)")
    args = parser.parse_args()
    cases = read_cases()
    unknown = set(args.names) - set(cases)
    if unknown:
        parser.error(f"unknown models {sorted(unknown)}; cases.txt has {list(cases)}")
    torch.set_num_threads(1)
    for name in args.names or cases:
        write(args.out.resolve(), name, cases[name])


if __name__ == "__main__":
    main()
