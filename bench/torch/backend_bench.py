"""PyTorch side of `bench/backend`: the same small CNN, the same digits, the same three tasks.

Started by `bench/backend.ts` as a worker,
    .venv/bin/python bench/torch/backend_bench.py <spec.json>
where the spec names a binary file of float32 images (N x 28 x 28 x 1, already normalised)
followed by int32 labels, and the sizes and batch size. It answers one JSON line on stdout to
each command line on stdin (a task name runs that task once and answers its time), so that the
bench can alternate PyTorch and tfjs repeats and both see the same machine load.
"""

import json
import os
import statistics
import sys
import time

import numpy as np
import torch
from torch import nn


def small_cnn() -> nn.Module:
    """conv16-pool-conv32-pool-dense64-dense10, 3x3 valid convolutions, ReLU, 2x2 max pooling.

    Returns logits; the softmax lives in the loss (the tfjs model ends in softmax, whose
    cross-entropy tfjs computes from probabilities: same arithmetic up to the last layer).
    """
    return nn.Sequential(
        nn.Conv2d(1, 16, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(5 * 5 * 32, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


def timed(fn, warmup: int, repeats: int) -> dict:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return {"median": statistics.median(samples), "samples": samples}


def load(spec: dict):
    n = spec["trainSize"] + spec["evalSize"]
    raw = open(spec["dataFile"], "rb").read()
    pixels = np.frombuffer(raw, dtype=np.float32, count=n * 784)
    labels = np.frombuffer(raw, dtype=np.int32, count=n, offset=n * 784 * 4)
    # NHWC (the JS layout) -> NCHW (PyTorch's).
    xs = torch.from_numpy(pixels.copy()).reshape(n, 28, 28, 1).permute(0, 3, 1, 2).contiguous()
    ys = torch.from_numpy(labels.astype(np.int64))
    t = spec["trainSize"]
    return xs[:t], ys[:t], xs[t:], ys[t:]


def matmul_rate(size: int, repeats: int) -> float:
    """Measured float32 GFLOP/s of one size x size matmul."""
    a = torch.randn(size, size)
    b = torch.randn(size, size)
    r = timed(lambda: torch.mm(a, b), 2, repeats)
    return 2 * size**3 / r["median"] / 1e9


def main() -> None:
    spec = json.load(open(sys.argv[1]))
    threads = spec.get("threads") or os.cpu_count()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x_train, y_train, x_eval, y_eval = load(spec)
    batch = spec["batchSize"]

    model = small_cnn()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(0)

    def epoch():
        model.train()
        order = torch.randperm(len(x_train), generator=generator)
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x_train[idx]), y_train[idx])
            loss.backward()
            optimizer.step()

    def evaluate():
        model.eval()
        correct = 0
        total_loss = 0.0
        with torch.no_grad():
            for start in range(0, len(x_eval), batch):
                logits = model(x_eval[start : start + batch])
                y = y_eval[start : start + batch]
                total_loss += float(loss_fn(logits, y)) * len(y)
                correct += int((logits.argmax(1) == y).sum())
        return correct / len(x_eval), total_loss / len(x_eval)

    def input_gradient(grad_batch: int):
        def run():
            model.eval()
            grads = []
            for start in range(0, len(x_eval), grad_batch):
                x = x_eval[start : start + grad_batch].clone().requires_grad_(True)
                loss = loss_fn(model(x), y_eval[start : start + grad_batch])
                (g,) = torch.autograd.grad(loss, x)
                grads.append(g.sign())
            return grads

        return run

    tasks = {
        "trainEpoch": epoch,
        "evaluate": evaluate,
        "inputGradient": input_gradient(batch),
        "inputGradientOneBatch": input_gradient(len(x_eval)),
    }

    def reply(obj: dict) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    reply(
        {
            "ready": True,
            "torchVersion": torch.__version__,
            "threads": torch.get_num_threads(),
            "interopThreads": torch.get_num_interop_threads(),
        }
    )
    # One command a line: a task name (run once, timed), "matmul", "accuracy" or "quit".
    for line in sys.stdin:
        command = line.strip()
        if command == "quit" or command == "":
            break
        if command in tasks:
            start = time.perf_counter()
            tasks[command]()
            reply({"seconds": time.perf_counter() - start})
        elif command == "matmul":
            reply({"gflops": matmul_rate(spec["matmulSize"], spec["repeats"])})
        elif command == "accuracy":
            accuracy, loss = evaluate()
            reply({"accuracy": accuracy, "loss": loss})
        else:
            reply({"error": f"unknown command {command!r}"})


if __name__ == "__main__":
    main()
