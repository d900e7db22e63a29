"""PyTorch side of `bench/models`: the paper's architectures, defined here as torchvision defines
them (torchvision itself is not a dependency), trained for a few steps to measure throughput.

Usage:
    .venv/bin/python bench/torch/models_bench.py worker '<spec JSON>'
        (run by `bench/models.ts`) spec: {"batch": 100, "input": [h, w, c], "classes": 10,
        "width": 1}. Prints a greeting line {"torch": version, "threads": n}, then answers each
        command on stdin with one JSON line: `load <model>` builds the model, Adam (lr 1e-3) and
        a fixed random batch; `steps <n>` times n training steps: {"seconds": total};
        `matmul <n> <reps>` times reps float32 n×n matrix products: {"seconds": total}; `quit`.
    .venv/bin/python bench/torch/models_bench.py export <spec.json>
        spec: {"model": name, "input": [h, w, c], "classes": k, "width": w, "batch": n,
               "out": folder}
        writes the model's state_dict (float32, one file per tensor), a random input batch and
        the eval-mode logits into `out`, with `manifest.json`, for the tfjs equivalence check.
    .venv/bin/python bench/torch/models_bench.py count
        prints the parameter counts at 224x224x3, 1,000 classes.
"""

import json
import os
import sys
import time

import numpy as np
import torch
from torch import nn


def scaled(channels, width):
    return max(1, round(channels * width))


# ---------------------------------------------------------------- ResNet (torchvision's layout)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(y + shortcut)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride):
        super().__init__()
        cout = planes * 4
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)  # V1.5
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(y + shortcut)


class ResNet(nn.Module):
    def __init__(self, block, layers, in_channels, classes, width):
        super().__init__()
        stem = scaled(64, width)
        self.conv1 = nn.Conv2d(in_channels, stem, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = stem
        for stage, blocks in enumerate(layers):
            planes = scaled(64 * 2**stage, width)
            modules = []
            for i in range(blocks):
                stride = 2 if i == 0 and stage > 0 else 1
                modules.append(block(cin, planes, stride))
                cin = planes * block.expansion
            setattr(self, f"layer{stage + 1}", nn.Sequential(*modules))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# ---------------------------------------------------------------- SqueezeNet 1.1


class Fire(nn.Module):
    def __init__(self, cin, squeeze, expand):
        super().__init__()
        self.squeeze = nn.Conv2d(cin, squeeze, 1)
        self.squeeze_activation = nn.ReLU(inplace=True)
        self.expand1x1 = nn.Conv2d(squeeze, expand, 1)
        self.expand1x1_activation = nn.ReLU(inplace=True)
        self.expand3x3 = nn.Conv2d(squeeze, expand, 3, padding=1)
        self.expand3x3_activation = nn.ReLU(inplace=True)

    def forward(self, x):
        s = self.squeeze_activation(self.squeeze(x))
        return torch.cat(
            [
                self.expand1x1_activation(self.expand1x1(s)),
                self.expand3x3_activation(self.expand3x3(s)),
            ],
            1,
        )


class SqueezeNet11(nn.Module):
    def __init__(self, in_channels, classes, width):
        super().__init__()
        w = lambda c: scaled(c, width)  # noqa: E731
        pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)  # noqa: E731
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, w(64), 3, 2),
            nn.ReLU(inplace=True),
            pool(),
            Fire(w(64), w(16), w(64)),
            Fire(2 * w(64), w(16), w(64)),
            pool(),
            Fire(2 * w(64), w(32), w(128)),
            Fire(2 * w(128), w(32), w(128)),
            pool(),
            Fire(2 * w(128), w(48), w(192)),
            Fire(2 * w(192), w(48), w(192)),
            Fire(2 * w(192), w(64), w(256)),
            Fire(2 * w(256), w(64), w(256)),
        )
        final = nn.Conv2d(2 * w(256), classes, 1)
        self.classifier = nn.Sequential(
            nn.Dropout(0.5), final, nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1)
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                if m is final:
                    nn.init.normal_(m.weight, 0.0, 0.01)
                else:
                    nn.init.kaiming_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return torch.flatten(self.classifier(self.features(x)), 1)


# ---------------------------------------------------------------- ShuffleNet V2 x1.0


def shuffle_channels(x, groups):
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleUnit(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.stride = stride
        half = cout // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False),
                nn.BatchNorm2d(cin),
                nn.Conv2d(cin, half, 1, bias=False),
                nn.BatchNorm2d(half),
                nn.ReLU(inplace=True),
            )
        else:
            self.branch1 = nn.Sequential()
        self.branch2 = nn.Sequential(
            nn.Conv2d(cin if stride > 1 else half, half, 1, bias=False),
            nn.BatchNorm2d(half),
            nn.ReLU(inplace=True),
            nn.Conv2d(half, half, 3, stride, 1, groups=half, bias=False),
            nn.BatchNorm2d(half),
            nn.Conv2d(half, half, 1, bias=False),
            nn.BatchNorm2d(half),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        if self.stride == 1:
            a, b = x.chunk(2, dim=1)
            out = torch.cat((a, self.branch2(b)), 1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), 1)
        return shuffle_channels(out, 2)


class ShuffleNetV2(nn.Module):
    def __init__(self, in_channels, classes, width):
        super().__init__()
        even = lambda c: 2 * scaled(c / 2, width)  # noqa: E731
        stem = scaled(24, width)
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channels, stem, 3, 2, 1, bias=False),
            nn.BatchNorm2d(stem),
            nn.ReLU(inplace=True),
        )
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = stem
        for s, (repeats, channels) in enumerate(zip([4, 8, 4], [116, 232, 464])):
            cout = even(channels)
            units = [ShuffleUnit(cin, cout, 2)] + [ShuffleUnit(cout, cout, 1) for _ in range(repeats - 1)]
            setattr(self, f"stage{s + 2}", nn.Sequential(*units))
            cin = cout
        last = scaled(1024, width)
        self.conv5 = nn.Sequential(
            nn.Conv2d(cin, last, 1, bias=False), nn.BatchNorm2d(last), nn.ReLU(inplace=True)
        )
        self.fc = nn.Linear(last, classes)

    def forward(self, x):
        x = self.maxpool(self.conv1(x))
        x = self.conv5(self.stage4(self.stage3(self.stage2(x))))
        return self.fc(x.mean([2, 3]))


def build(name, in_channels, classes, width):
    if name == "resnet18":
        return ResNet(BasicBlock, [2, 2, 2, 2], in_channels, classes, width)
    if name == "resnet50":
        return ResNet(Bottleneck, [3, 4, 6, 3], in_channels, classes, width)
    if name == "squeezenet1_1":
        return SqueezeNet11(in_channels, classes, width)
    if name == "shufflenet_v2_x1_0":
        return ShuffleNetV2(in_channels, classes, width)
    raise SystemExit(f"unknown model {name!r}")


# ---------------------------------------------------------------- commands


class Worker:
    """Trains one model at a time on a fixed random batch, timing steps on request."""

    def __init__(self, spec):
        self.spec = spec
        self.step = None

    def load(self, name):
        h, w, c = self.spec["input"]
        batch, classes = self.spec["batch"], self.spec["classes"]
        torch.manual_seed(0)
        model = build(name, c, classes, self.spec.get("width", 1))
        model.train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        loss_fn = nn.CrossEntropyLoss()
        xs = torch.randn(batch, c, h, w)
        ys = torch.randint(0, classes, (batch,))

        def step():
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(xs), ys)
            loss.backward()
            optimizer.step()
            return loss.item()

        self.step = step
        return {"model": name, "params": sum(p.numel() for p in model.parameters())}

    def steps(self, n):
        if self.step is None:
            return {"error": "no model loaded: send 'load <name>' first"}
        start = time.perf_counter()
        for _ in range(n):
            self.step()
        return {"seconds": time.perf_counter() - start}


def matmul(n, reps):
    """Seconds for `reps` float32 n×n products (after one untimed): the machine's GEMM rate."""
    generator = torch.Generator().manual_seed(3)
    a = torch.randn(n, n, generator=generator)
    b = torch.randn(n, n, generator=generator)
    torch.mm(a, b)
    start = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, b)
    return {"seconds": time.perf_counter() - start}


def serve(spec):
    """Worker loop: greeting line, then one JSON answer per command line on stdin."""
    worker = Worker(spec)
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        try:
            if parts[0] == "quit":
                break
            if parts[0] == "load" and len(parts) == 2:
                answer = worker.load(parts[1])
            elif parts[0] == "steps" and len(parts) == 2:
                answer = worker.steps(int(parts[1]))
            elif parts[0] == "matmul" and len(parts) == 3:
                answer = matmul(int(parts[1]), int(parts[2]))
            else:
                answer = {"error": f"unknown command {line.strip()!r}; use load <model>, steps <n>, matmul <n> <reps>, quit"}
        except SystemExit as err:
            answer = {"error": str(err)}
        print(json.dumps(answer), flush=True)


def export(spec):
    h, w, c = spec["input"]
    torch.manual_seed(spec.get("seed", 0))
    model = build(spec["model"], c, spec["classes"], spec.get("width", 1))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):  # non-trivial statistics and affine terms
                m.weight.uniform_(0.5, 1.5, generator=generator)
                m.bias.uniform_(-0.5, 0.5, generator=generator)
                m.running_mean.uniform_(-0.2, 0.2, generator=generator)
                m.running_var.uniform_(0.5, 2.0, generator=generator)
            elif isinstance(m, nn.Conv2d) and spec["model"] == "squeezenet1_1":
                m.bias.uniform_(0.0, 0.1, generator=generator)
    model.eval()
    out = spec["out"]
    os.makedirs(out, exist_ok=True)
    tensors = []
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        file = f"{len(tensors)}.bin"
        value.detach().numpy().astype("<f4").tofile(os.path.join(out, file))
        tensors.append({"name": key, "shape": list(value.shape), "file": file})
    xs = torch.randn(spec["batch"], c, h, w, generator=generator)
    with torch.no_grad():
        logits = model(xs)
    xs.permute(0, 2, 3, 1).contiguous().numpy().astype("<f4").tofile(os.path.join(out, "input.bin"))
    logits.numpy().astype("<f4").tofile(os.path.join(out, "logits.bin"))
    manifest = {"tensors": tensors, "input": [spec["batch"], h, w, c], "logits": list(logits.shape)}
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    return {"out": out, "tensors": len(tensors)}


def count():
    names = ["resnet18", "resnet50", "squeezenet1_1", "shufflenet_v2_x1_0"]
    return {n: sum(p.numel() for p in build(n, 3, 1000, 1).parameters()) for n in names}


def main():
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "count":
        result = count()
    elif command == "worker" and len(sys.argv) == 3:
        serve(json.loads(sys.argv[2]))
        return
    elif command == "export" and len(sys.argv) == 3:
        with open(sys.argv[2]) as f:
            result = export(json.load(f))
    else:
        raise SystemExit(__doc__)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
