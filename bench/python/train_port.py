"""A PyTorch port of `adcorre train`'s recipe, for running the Ad-Corre ablation
at the shipped model's full schedule on a CUDA GPU (docs/ablation.md).

It is not adcorre: it re-implements, from the C++ sources, what one
`adcorre train` run does, so that several full-length runs fit in minutes:
  - the network: adcorre_torch.FerModel (the port used by `adcorre bench`),
    built from a ModelConfig JSON, with the C++ initialisation;
  - the loss: 50/C CE (label smoothing) + FD (adaptive weights from the
    confusion matrix of the last `window` training samples) + MD + ED, as
    src/loss/adcorre_loss.cpp, written without host syncs (a ring buffer on
    the GPU for the window, masks instead of dropping absent classes in MD);
  - augmentation 'strong': src/data/augment.cpp (affine warp, flip,
    brightness/contrast, random erasing), on the batch tensor;
  - AdamW in two groups (decay only on tensors of dim >= 2), the one-cycle
    schedule of src/train/lr_schedule.cpp, EMA with a warming-up decay,
    a fresh random order every epoch, the last partial batch dropped.
Differences that remain: random streams (not the C++ ones), GPU kernels
(TF32 convolutions), float32 throughout.

Usage: python3 train_port.py --pack PREFIX --config CFG.json --loss adcorre|ce
         [--no-adaptive] [--epochs 25] [--seed 1] [--deadline SECONDS] --out RESULT.json
PREFIX: made by pack_class_folders.py (PREFIX.bin, PREFIX.tsv with splits train, val).
Prints one line per epoch; writes RESULT.json at the end (or at the deadline,
with "completed": false).
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from adcorre_torch import FerModel, corr_rows, ed_term, fd_term  # noqa: E402  (both run on any device)


# ---------------------------------------------------------------- data

def load_pack(prefix, size):
    """{split: (uint8 [N, 1, size, size], int64 [N])} decoded from the pack."""
    import cv2
    blob = np.fromfile(prefix + ".bin", dtype=np.uint8)
    out = {}
    with open(prefix + ".tsv") as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    for split in sorted({r[0] for r in rows}):
        sel = [r for r in rows if r[0] == split]
        pix = np.empty((len(sel), 1, size, size), dtype=np.uint8)
        labels = np.empty(len(sel), dtype=np.int64)
        for i, (_, label, off, n, path) in enumerate(sel):
            im = cv2.imdecode(blob[int(off):int(off) + int(n)], cv2.IMREAD_GRAYSCALE)
            if im is None:
                raise ValueError(f"{path}: not a decodable image")
            if im.shape != (size, size):
                im = cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA)
            pix[i, 0] = im
            labels[i] = int(label)
        out[split] = (torch.from_numpy(pix), torch.from_numpy(labels))
    return out


def normalize(pixels, cfg):
    mean, std = cfg["mean"][0], cfg["std"][0]
    return (pixels.float() / 255.0 - mean) / std


def augment_strong(x, gen):
    """src/data/augment.cpp with the 'strong' preset."""
    B, _, H, W = x.shape
    dev = x.device

    def u():
        return torch.rand(B, generator=gen, device=dev)

    flip = torch.where(u() < 0.5, -1.0, 1.0)
    scale = 0.85 + 0.15 * u()
    angle = (u() * 2 - 1) * (10 * math.pi / 180)
    tx, ty = (u() * 2 - 1) * 0.1, (u() * 2 - 1) * 0.1
    c, s = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack([torch.stack([c * flip, -s, tx], 1), torch.stack([s * flip, c, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    b = ((u() * 2 - 1) * 0.2).view(B, 1, 1, 1)
    k = (1 + (u() * 2 - 1) * 0.2).view(B, 1, 1, 1)
    mean = x.mean((1, 2, 3), keepdim=True)
    x = (x - mean) * k + mean + b
    apply = (u() < 0.25).float()
    area = (0.02 + (0.25 - 0.02) * u()) * (H * W)
    ratio = torch.exp(math.log(0.3) + (math.log(3.3) - math.log(0.3)) * u())
    eh, ew = torch.sqrt(area * ratio).clamp_max(H), torch.sqrt(area / ratio).clamp_max(W)
    y0, x0 = u() * (H - eh), u() * (W - ew)
    ys = torch.arange(H, device=dev).view(1, H, 1)
    xs = torch.arange(W, device=dev).view(1, 1, W)
    inside = ((ys >= y0.view(B, 1, 1)) & (ys < (y0 + eh).view(B, 1, 1)) &
              (xs >= x0.view(B, 1, 1)) & (xs < (x0 + ew).view(B, 1, 1)))
    mask = (inside.float() * apply.view(B, 1, 1)).unsqueeze(1)
    return x * (1 - mask)


# ---------------------------------------------------------------- loss

class GpuConfusionWindow:
    """The confusion counts of the last `capacity` (truth, prediction) pairs, on the device."""

    def __init__(self, num_classes, capacity, device):
        self.C, self.capacity, self.pos = num_classes, capacity, 0
        self.codes = torch.full((capacity,), num_classes * num_classes, dtype=torch.long, device=device)

    def record(self, labels, preds):
        n = labels.shape[0]
        assert n <= self.capacity
        at = (self.pos + torch.arange(n, device=labels.device)) % self.capacity
        self.codes[at] = labels * self.C + preds
        self.pos = (self.pos + n) % self.capacity

    def matrix(self):
        C = self.C
        # scatter_add rather than bincount: bincount reads its maximum back to the host.
        counts = torch.zeros(C * C + 1, device=self.codes.device).scatter_add_(
            0, self.codes, torch.ones_like(self.codes, dtype=torch.float))[:C * C].view(C, C)
        rows = counts.sum(1, keepdim=True)
        return torch.where(rows > 0, counts / rows.clamp_min(1), torch.zeros_like(counts))


def md_term(e, labels, num_classes):
    """adcorre_torch.md_term over the classes present in the batch, with masks
    (all C class means are formed; absent classes are masked out)."""
    k = e.shape[0]
    classes = torch.arange(num_classes, device=e.device)
    member = labels.unsqueeze(0) == classes.unsqueeze(1)  # [C, B]
    present = member.any(1)
    P = present.sum().to(e.dtype)
    w = torch.where(member, 1.0, 1e-7).to(e.dtype)
    mu = torch.matmul(w.unsqueeze(0), e) / w.sum(1, keepdim=True).unsqueeze(0)  # [k, C, d]
    r = corr_rows(mu)
    pair = (present.unsqueeze(0) & present.unsqueeze(1)).to(e.dtype) * (1 - torch.eye(num_classes, device=e.device))
    md = (pair.unsqueeze(0) * (1 + r)).sum() / (k * P * P)
    return torch.where(P >= 2, md, torch.zeros_like(md))


class Loss:
    def __init__(self, kind, adaptive, num_classes, window, label_smoothing, device):
        self.kind, self.adaptive, self.C, self.ls = kind, adaptive, num_classes, label_smoothing
        self.window = GpuConfusionWindow(num_classes, window, device)

    def __call__(self, logits, e, labels):
        ce = F.cross_entropy(logits, labels, label_smoothing=self.ls)
        zero = ce.detach() * 0
        if self.kind == "ce":
            return 50.0 / self.C * ce, {"ce": ce, "fd": zero, "md": zero, "ed": zero}
        self.window.record(labels, logits.detach().argmax(1))
        m = self.window.matrix() if self.adaptive else None
        fd, md, ed = fd_term(e, labels, m), md_term(e, labels, self.C), ed_term(e)
        return 50.0 / self.C * ce + fd + md + ed, {"ce": ce, "fd": fd, "md": md, "ed": ed}


# ---------------------------------------------------------------- training

def lr_onecycle(lr, warmup, step, total):
    """src/train/lr_schedule.cpp, schedule 'onecycle'."""
    up = max(int(warmup * total), 1)
    if step < up:
        return lr / 25.0 + (lr - lr / 25.0) * step / up
    p = (step - up) / max(total - up, 1)
    lo = lr / 1e4
    return lo + (lr - lo) * 0.5 * (1 + math.cos(math.pi * min(p, 1.0)))


@torch.no_grad()
def evaluate(model, pixels, labels, cfg, num_classes, flip=False, batch=1000):
    model.eval()
    preds = []
    for i in range(0, pixels.shape[0], batch):
        x = normalize(pixels[i:i + batch], cfg).contiguous(memory_format=torch.channels_last)
        p = torch.softmax(model(x)[0], 1)
        if flip:
            p = (p + torch.softmax(model(x.flip(3))[0], 1)) / 2
        preds.append(p.argmax(1))
    pred = torch.cat(preds)
    acc = (pred == labels).float().mean().item()
    per_class = [((pred == labels) & (labels == c)).sum().item() / max((labels == c).sum().item(), 1)
                 for c in range(num_classes)]
    return acc, sum(per_class) / num_classes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pack", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--width", type=float, default=None)
    ap.add_argument("--loss", choices=["adcorre", "ce"], default="adcorre")
    ap.add_argument("--no-adaptive", action="store_true")
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--weight-decay", type=float, default=0.05)
    ap.add_argument("--warmup", type=float, default=0.15)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--ema", type=float, default=0.998)
    ap.add_argument("--window", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--deadline", type=float, default=1e9, help="stop after this many seconds of wall time")
    ap.add_argument("--max-steps", type=int, default=0, help="steps per epoch (0: all); for smoke tests")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    t_start = time.time()

    torch.backends.cudnn.benchmark = True
    cfg = json.load(open(a.config))
    if a.width is not None:
        cfg["width"] = a.width
    C = len(cfg["class_names"])
    dev = torch.device(a.device)
    torch.manual_seed(a.seed)
    data = load_pack(a.pack, cfg["input_size"])
    tr_x, tr_y = (t.to(dev) for t in data["train"])
    va_x, va_y = (t.to(dev) for t in data["val"])

    model = FerModel(cfg).to(dev).to(memory_format=torch.channels_last)
    ema = FerModel(cfg).to(dev).to(memory_format=torch.channels_last)
    ema.load_state_dict(model.state_dict())
    ema.eval()
    params = list(model.parameters())
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=a.lr)
    loss_fn = Loss(a.loss, not a.no_adaptive, C, a.window, a.label_smoothing, dev)
    gen = torch.Generator(device=dev)
    gen.manual_seed(a.seed)

    N = tr_x.shape[0]
    per_epoch = N // a.batch_size
    if a.max_steps:
        per_epoch = min(per_epoch, a.max_steps)
    total = per_epoch * a.epochs
    name = f"{a.loss}{'-nonadaptive' if a.no_adaptive else ''}-w{cfg['width']}-e{a.epochs}-s{a.seed}"
    result = {"name": name, "loss": a.loss, "adaptive": not a.no_adaptive, "width": cfg["width"],
              "epochs": a.epochs, "seed": a.seed, "batch_size": a.batch_size, "lr": a.lr,
              "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
              "torch": torch.__version__, "parameters": sum(p.numel() for p in params),
              "curve": [], "completed": False}
    step = 0
    ema_p, ema_b = list(ema.parameters()), list(ema.buffers())
    for epoch in range(a.epochs):
        model.train()
        order = torch.randperm(N, generator=gen, device=dev)
        sums = torch.zeros(5, device=dev)
        correct = torch.zeros((), device=dev)
        t_epoch = time.time()
        for s in range(per_epoch):
            idx = order[s * a.batch_size:(s + 1) * a.batch_size]
            x = augment_strong(normalize(tr_x[idx], cfg), gen).contiguous(memory_format=torch.channels_last)
            y = tr_y[idx]
            lr = lr_onecycle(a.lr, a.warmup, step, total)
            for g in opt.param_groups:
                g["lr"] = lr
            logits, e = model(x)
            total_loss, terms = loss_fn(logits, e, y)
            opt.zero_grad(set_to_none=True)
            total_loss.backward()
            opt.step()
            with torch.no_grad():
                d = min(a.ema, (1.0 + step) / (10.0 + step))
                torch._foreach_mul_(ema_p, d)
                torch._foreach_add_(ema_p, params, alpha=1 - d)
                sums += torch.stack([total_loss.detach(), terms["ce"].detach(), terms["fd"].detach(),
                                     terms["md"].detach(), terms["ed"].detach()])
                correct += (logits.argmax(1) == y).sum()
            step += 1
        if not torch.isfinite(sums).all():
            raise RuntimeError(f"{name}: the loss became non-finite in epoch {epoch + 1}")
        m = (sums / per_epoch).tolist()
        with torch.no_grad():  # the EMA model's buffers are the raw model's (as the C++ trainer)
            for eb, mb in zip(ema_b, model.buffers()):
                eb.copy_(mb)
        val_ema, _ = evaluate(ema, va_x, va_y, cfg, C)
        val_raw, _ = evaluate(model, va_x, va_y, cfg, C)
        rec = {"epoch": epoch + 1, "loss": m[0], "ce": m[1], "fd": m[2], "md": m[3], "ed": m[4],
               "train_accuracy": correct.item() / (per_epoch * a.batch_size),
               "val_accuracy_ema": val_ema, "val_accuracy_raw": val_raw, "seconds": time.time() - t_epoch}
        result["curve"].append(rec)
        print(f"{name} epoch {epoch + 1}/{a.epochs} loss {m[0]:.3f} ce {m[1]:.3f} fd {m[2]:.3f} md {m[3]:.3f} "
              f"ed {m[4]:.3f} train {rec['train_accuracy']:.4f} val ema {val_ema:.4f} raw {val_raw:.4f} "
              f"({rec['seconds']:.1f} s)", flush=True)
        if time.time() - t_start > a.deadline and epoch + 1 < a.epochs:
            print(f"{name}: deadline reached after epoch {epoch + 1}", flush=True)
            break
    else:
        result["completed"] = True
    for label, net in (("raw", model), ("ema", ema)):
        for flip in (False, True):
            acc, mca = evaluate(net, va_x, va_y, cfg, C, flip=flip)
            key = f"{label}_{'flip' if flip else 'none'}"
            result[f"val_accuracy_{key}"], result[f"val_mean_class_accuracy_{key}"] = acc, mca
    result["seconds"] = time.time() - t_start
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"{name} final: raw {result['val_accuracy_raw_none']:.4f} (flip {result['val_accuracy_raw_flip']:.4f}) "
          f"ema {result['val_accuracy_ema_none']:.4f}; {result['seconds']:.0f} s", flush=True)


if __name__ == "__main__":
    main()
