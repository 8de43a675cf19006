"""The Python side of `adcorre bench`, run by it as a subprocess.

Usage: python3 bench_python.py REQUEST.json
REQUEST: {"threads": N, "seed": S, "tasks": [TASK, ...]}, each TASK one of
  {"name", "kind": "infer", "config": <ModelConfig JSON>, "batch", "timing"}
  {"name", "kind": "train", "config": <ModelConfig JSON>, "batch", "timing"}
  {"name", "kind": "loss_torch" | "loss_numpy", "B", "k", "d", "C", "timing"}
  timing: {"warmup", "min_iters", "min_seconds", "max_iters"}
Prints one JSON object on stdout: versions, threads, and per task the
per-iteration wall and process CPU times in seconds ("times_s", "cpu_s");
`adcorre bench` computes the statistics with the same code as its own
measurements.
"""
import json
import os
import platform
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from adcorre_numpy_loops import NumpyConfusionWindow, numpy_adcorre_loss  # noqa: E402
from adcorre_torch import AdCorreLoss, FerModel, l2_normalize, make_adam  # noqa: E402


def measure(fn, timing):
    """Warm-up calls, then timed calls until min_iters and min_seconds are both
    reached, or max_iters (the same policy as src/bench/timing.cpp). Records
    the wall time and the process CPU time of each call."""
    for _ in range(int(timing.get("warmup", 1))):
        fn()
    times, cpu = [], []
    start = time.perf_counter()
    while True:
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        cpu.append(time.process_time() - c0)
        times.append(time.perf_counter() - t0)
        done = len(times) >= int(timing.get("min_iters", 1)) and time.perf_counter() - start >= float(
            timing.get("min_seconds", 0))
        if done or len(times) >= int(timing.get("max_iters", 1000000)):
            return {"times_s": times, "cpu_s": cpu}


def model_input(cfg, batch, gen):
    """Random 8-bit pixels normalised as the config says, channels_last."""
    s, c = cfg["input_size"], cfg["in_channels"]
    pixels = torch.randint(0, 256, (batch, c, s, s), generator=gen, dtype=torch.uint8).float()
    mean = torch.tensor(cfg["mean"] if len(cfg["mean"]) == c else cfg["mean"] * c).view(1, c, 1, 1)
    std = torch.tensor(cfg["std"] if len(cfg["std"]) == c else cfg["std"] * c).view(1, c, 1, 1)
    return ((pixels / 255.0 - mean) / std).contiguous(memory_format=torch.channels_last)


def run_infer(task, gen):
    cfg = task["config"]
    model = FerModel(cfg).to(memory_format=torch.channels_last).eval()
    x = model_input(cfg, task["batch"], gen)

    def step():
        with torch.inference_mode():
            model(x)

    return measure(step, task["timing"])


def run_train(task, gen):
    cfg = task["config"]
    model = FerModel(cfg).to(memory_format=torch.channels_last).train()
    opt = make_adam(model)
    loss = AdCorreLoss(len(cfg["class_names"]))
    x = model_input(cfg, task["batch"], gen)
    y = torch.randint(0, len(cfg["class_names"]), (task["batch"],), generator=gen)

    def step():
        logits, e = model(x)
        terms = loss(logits, e, y)
        opt.zero_grad()
        terms["total"].backward()
        opt.step()

    return measure(step, task["timing"])


def loss_inputs(task, gen):
    B, k, d, C = task["B"], task["k"], task["d"], task["C"]
    logits = torch.randn(B, C, generator=gen)
    e = l2_normalize(torch.randn(k, B, d, generator=gen))
    y = torch.randint(0, C, (B,), generator=gen)
    return logits, e, y


def run_loss_torch(task, gen):
    logits, e, y = loss_inputs(task, gen)
    logits.requires_grad_(True)
    e.requires_grad_(True)
    loss = AdCorreLoss(task["C"])

    def step():
        terms = loss(logits, e, y)
        terms["total"].backward()
        logits.grad = None
        e.grad = None

    return measure(step, task["timing"])


def run_loss_numpy(task, gen):
    logits, e, y = loss_inputs(task, gen)
    window = NumpyConfusionWindow(task["C"], 1000)

    def step():
        # The released code receives framework tensors and converts them.
        return numpy_adcorre_loss(logits.detach().numpy(), e.detach().numpy(), y.numpy(), window)

    result = measure(step, task["timing"])
    # Sanity: the numpy-loops total equals the vectorised PyTorch one (float32 inputs).
    got = numpy_adcorre_loss(logits.numpy(), e.numpy(), y.numpy(), NumpyConfusionWindow(task["C"], 1000))["total"]
    want = float(AdCorreLoss(task["C"])(logits, e, y)["total"])
    result.update({"total": got, "torch_total": want, "rel_diff": abs(got - want) / max(abs(want), 1e-12)})
    return result


RUNNERS = {"infer": run_infer, "train": run_train, "loss_torch": run_loss_torch, "loss_numpy": run_loss_numpy}


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1]) as f:
        req = json.load(f)
    threads = int(req.get("threads", 1))
    torch.set_num_threads(threads)
    torch.manual_seed(int(req.get("seed", 1)))
    out = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
           "threads": torch.get_num_threads(), "mkldnn": torch.backends.mkldnn.is_available(), "results": {}}
    for task in req["tasks"]:
        gen = torch.Generator().manual_seed(int(req.get("seed", 1)))
        if task["kind"] not in RUNNERS:
            raise SystemExit(f"bench_python: unknown task kind '{task['kind']}' in {sys.argv[1]}")
        print(f"python: {task['name']}", file=sys.stderr, flush=True)
        out["results"][task["name"]] = RUNNERS[task["kind"]](task, gen)
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
