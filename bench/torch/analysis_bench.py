"""PyTorch peer of `bench/analysis`: the naive filtering sweep of docs/method.md §1-§5 as the
authors' notebooks run it, written from our method specification. For every convolution and
linear weight, for each filter (high-pass, low-pass, pulse) and each of the K thresholds, the
filtered weight is copied into the model and the model evaluated on the clean set and on an FGSM
set (regenerated against the filtered model when `regenerate`, else made once against the
unfiltered model). The model is in eval mode (BatchNorm statistics, no dropout).

Usage:
    .venv/bin/python bench/torch/analysis_bench.py '<spec JSON>'
        spec: {"model": "small_cnn" | "resnet18" | ..., "width": w, "input": [h, w, c],
               "examples": n, "steps": K, "regenerate": bool, "epsilon": e, "batch": b,
               "threads": t}
        prints one JSON line: {"seconds", "cells", "parameters", "threads", "torch"}.
"""

import json
import os
import sys
import time

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models_bench import build  # noqa: E402


def small_cnn(in_channels, classes, size):
    """conv16-pool-conv32-pool-dense64-dense10, as src/models/small-cnn.ts (valid padding)."""
    side = ((size - 2) // 2 - 2) // 2
    return nn.Sequential(
        nn.Conv2d(in_channels, 16, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * side * side, 64), nn.ReLU(), nn.Linear(64, classes),
    )


def removes(kind, step, steps, lo, hi, w):
    """The removed set of docs/method.md §2 (as src/analysis/filters.ts)."""
    u = step / (steps - 1)
    span = hi - lo
    if kind == "highpass":
        alpha = hi if step == steps - 1 else lo + u * span
        return w <= alpha
    if kind == "lowpass":
        alpha = lo if step == steps - 1 else hi - u * span
        return w >= alpha
    alpha = hi if step == steps - 1 else lo + u * span
    half = span / steps / 2
    return (w >= alpha - half) & (w < alpha + half)


def fgsm(model, x, y, eps):
    x = x.clone().requires_grad_(True)
    logits = model(x)
    loss = nn.functional.cross_entropy(logits, y, reduction="sum")
    (grad,) = torch.autograd.grad(loss, x)
    return (x + eps * grad.sign()).detach(), logits.argmax(1)


def correct(model, x, y):
    with torch.no_grad():
        return int((model(x).argmax(1) == y).sum())


def sweep(model, batches, spec):
    steps, eps = spec["steps"], spec["epsilon"]
    fixed = [fgsm(model, x, y, eps)[0] for x, y in batches]
    params = [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    cells = 0
    for p in params:
        original = p.data.clone()
        lo, hi = float(original.min()), float(original.max())
        for kind in ("highpass", "lowpass", "pulse"):
            for step in range(steps):
                filtered = original.clone()
                filtered[removes(kind, step, steps, lo, hi, original)] = 0
                p.data.copy_(filtered)
                for i, (x, y) in enumerate(batches):
                    if spec["regenerate"]:
                        adv, clean = fgsm(model, x, y, eps)
                        int((clean == y).sum())
                    else:
                        adv = fixed[i]
                        correct(model, x, y)
                    correct(model, adv, y)
                cells += 1
        p.data.copy_(original)
    return cells, len(params)


def main():
    spec = json.loads(sys.argv[1])
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(7)
    h, w, c = spec["input"]
    if spec["model"] == "small_cnn":
        model = small_cnn(c, 10, h)
    else:
        model = build(spec["model"], c, 10, spec["width"])
    model.eval()
    n, b = spec["examples"], spec["batch"]
    xs = torch.rand(n, c, h, w)
    ys = torch.randint(0, 10, (n,))
    batches = [(xs[i : i + b], ys[i : i + b]) for i in range(0, n, b)]
    # Warm-up, untimed, as on our side: one attack and one forward pass of the first batch.
    x0, y0 = batches[0]
    correct(model, fgsm(model, x0, y0, spec["epsilon"])[0], y0)
    start = time.perf_counter()
    cells, count = sweep(model, batches, spec)
    seconds = time.perf_counter() - start
    print(json.dumps({
        "seconds": seconds, "cells": cells, "parameters": count,
        "threads": torch.get_num_threads(), "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
