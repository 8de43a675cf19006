"""The Python (PyTorch) counterpart of adcorre's network and Ad-Corre loss,
for `adcorre bench`'s side-by-side comparison.

It is a line-by-line port of the C++ code, so both sides run the same
kernels and only the host language and framework overhead differ:
  - Xception + Ad-Corre head: src/models/{xception,layers,adcorre_head,fer_model}.cpp,
    built from the same ModelConfig JSON the C++ side uses;
  - the vectorised Ad-Corre loss and its confusion window:
    src/loss/{adcorre_loss,confusion_window}.cpp.
"""
import math
from collections import deque

import torch
import torch.nn as nn
import torch.nn.functional as F


# ---------------------------------------------------------------- layers

def tf_same_padding(size, kernel, stride, dilation=1):
    """TensorFlow 'same' padding (before, after) for one dimension."""
    eff = (kernel - 1) * dilation + 1
    out = (size + stride - 1) // stride
    total = max((out - 1) * stride + eff - size, 0)
    return total // 2, total - total // 2


class Conv2dTF(nn.Module):
    """Conv2d with padding 'valid' or TensorFlow 'same' (extra pixel bottom/right)."""

    def __init__(self, cin, cout, kernel, stride, padding, bias, groups=1):
        super().__init__()
        assert padding in ("same", "valid")
        self.kernel, self.stride = kernel, stride
        self.same = padding == "same"
        self.symmetric = stride == 1 and kernel % 2 == 1
        pad = kernel // 2 if (self.same and self.symmetric) else 0
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=pad, bias=bias, groups=groups)

    def forward(self, x):
        if self.same and not self.symmetric:
            t, b = tf_same_padding(x.shape[2], self.kernel, self.stride)
            l, r = tf_same_padding(x.shape[3], self.kernel, self.stride)
            if t or b or l or r:
                return self.conv(F.pad(x, (l, r, t, b)))
        return self.conv(x)


class SeparableConv2d(nn.Module):
    """Keras SeparableConv2D: depthwise 3x3 then pointwise 1x1, no bias."""

    def __init__(self, cin, cout):
        super().__init__()
        self.depthwise = Conv2dTF(cin, cin, 3, 1, "same", False, groups=cin)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


def max_pool_tf_same(x, kernel, stride):
    t, b = tf_same_padding(x.shape[2], kernel, stride)
    l, r = tf_same_padding(x.shape[3], kernel, stride)
    if t or b or l or r:
        x = F.pad(x, (l, r, t, b), value=-math.inf)
    return F.max_pool2d(x, kernel, stride)


def l2_normalize(x):
    return x * (x * x).sum(-1, keepdim=True).clamp_min(1e-12).rsqrt()


def scaled_channels(c, width):
    if width == 1.0:
        return c
    return max(8, int(math.floor(c * width / 8.0 + 0.5)) * 8)  # std::lround for c > 0


# ---------------------------------------------------------------- network

class StemStep(nn.Module):
    def __init__(self, conv1, bn1, conv2, bn2):
        super().__init__()
        self.conv1, self.bn1, self.conv2, self.bn2 = conv1, bn1, conv2, bn2

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)))


class DownStep(nn.Module):
    def __init__(self, s1, b1, s2, b2, sc, sb, pre_relu):
        super().__init__()
        self.s1, self.b1, self.s2, self.b2, self.sc, self.sb = s1, b1, s2, b2, sc, sb
        self.pre_relu = pre_relu

    def forward(self, x):
        r = self.sb(self.sc(x))
        y = torch.relu(x) if self.pre_relu else x
        y = torch.relu(self.b1(self.s1(y)))
        y = self.b2(self.s2(y))
        return max_pool_tf_same(y, 3, 2) + r


class MiddleStep(nn.Module):
    def __init__(self, convs, bns):
        super().__init__()
        self.convs, self.bns = nn.ModuleList(convs), nn.ModuleList(bns)

    def forward(self, x):
        y = x
        for conv, bn in zip(self.convs, self.bns):
            y = bn(conv(torch.relu(y)))
        return y + x


class ExitConvStep(nn.Module):
    def __init__(self, s, b):
        super().__init__()
        self.s, self.b = s, b

    def forward(self, x):
        return torch.relu(self.b(self.s(x)))


class Xception(nn.Module):
    """Xception scaled by a ModelConfig dict (see include/adcorre/models/xception.h)."""

    def __init__(self, cfg):
        super().__init__()
        eps, mom, width = cfg["bn_eps"], cfg["bn_momentum"], cfg["width"]

        def ch(c):
            return scaled_channels(c, width)

        def bn(c):
            return nn.BatchNorm2d(c, eps=eps, momentum=mom)

        steps = []
        c1, c2 = ch(cfg["stem_conv1"]), ch(cfg["stem_conv2"])
        steps.append(StemStep(Conv2dTF(cfg["in_channels"], c1, 3, cfg["stem_stride1"], cfg["stem_padding"], False), bn(c1),
                              Conv2dTF(c1, c2, 3, cfg["stem_stride2"], cfg["stem_padding"], False), bn(c2)))
        c_in = c2

        def down(c_mid, c_out, pre_relu):
            nonlocal c_in
            steps.append(DownStep(SeparableConv2d(c_in, c_mid), bn(c_mid), SeparableConv2d(c_mid, c_out), bn(c_out),
                                  nn.Conv2d(c_in, c_out, 1, stride=2, bias=False), bn(c_out), pre_relu))
            c_in = c_out

        for i, c in enumerate(cfg["entry_blocks"]):
            down(ch(c), ch(c), pre_relu=i > 0)
        for _ in range(cfg["middle_blocks"]):
            steps.append(MiddleStep([SeparableConv2d(c_in, c_in) for _ in range(3)], [bn(c_in) for _ in range(3)]))
        if cfg["exit_block"] > 0:
            down(c_in, ch(cfg["exit_block"]), pre_relu=True)
        for c in cfg["exit_convs"]:
            co = ch(c)
            steps.append(ExitConvStep(SeparableConv2d(c_in, co), bn(co)))
            c_in = co
        self.steps = nn.ModuleList(steps)
        self.feature_dim = c_in

    def forward(self, x):
        y = x
        for step in self.steps:
            y = step(y)
            # As the C++ model: a 1-channel input is ambiguous between layouts,
            # so keep the whole net in channels_last on CPU.
            if y.device.type == "cpu":
                y = y.contiguous(memory_format=torch.channels_last)
        return y.mean((2, 3))


class AdCorreHead(nn.Module):
    def __init__(self, features, k, d, classes, p):
        super().__init__()
        self.embed = nn.ModuleList([nn.Linear(features, d) for _ in range(k)])
        self.dropout = nn.Dropout(p)
        self.classifier = nn.Linear(k * d, classes)

    def forward(self, f):
        w = torch.stack([m.weight for m in self.embed])              # [k, d, F]
        b = torch.stack([m.bias for m in self.embed]).unsqueeze(1)   # [k, 1, d]
        e = l2_normalize(torch.matmul(f.unsqueeze(0), w.transpose(1, 2)) + b)  # [k, B, d]
        concat = e.transpose(0, 1).reshape(f.shape[0], -1)
        return self.classifier(self.dropout(concat)), e


class FerModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.backbone = Xception(cfg)
        self.head = AdCorreHead(self.backbone.feature_dim, cfg["k"], cfg["d"], len(cfg["class_names"]), cfg["dropout"])
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                elif isinstance(m, nn.Linear):
                    nn.init.xavier_uniform_(m.weight)
                    nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.head(self.backbone(x))


def make_adam(model, lr=1e-3, weight_decay=0.0):
    """As train::make_optimizer: two groups, decay only on weights of dim >= 2."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.Adam([{"params": decay, "weight_decay": weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr)


# ---------------------------------------------------------------- loss

def corr_rows(x, eps=1e-12):
    xc = x - x.mean(-1, keepdim=True)
    gram = torch.matmul(xc, xc.transpose(-1, -2))
    inv = ((xc * xc).sum(-1) + eps).rsqrt()
    return gram * inv.unsqueeze(-1) * inv.unsqueeze(-2)


def fd_term(e, labels, confusion):
    B = e.shape[1]
    phi = corr_rows(e)
    omega = (labels.unsqueeze(0) == labels.unsqueeze(1)).to(e.dtype) * 2 - 1
    diff = (omega.unsqueeze(0) - phi).abs()
    if confusion is None:
        return diff.mean()
    miss = 1 - confusion.to(e.device, e.dtype).diagonal().index_select(0, labels)
    off = 1 - torch.eye(B, dtype=e.dtype, device=e.device)
    w = off * (1 + miss.unsqueeze(0) + miss.unsqueeze(1))
    return (w.unsqueeze(0) * diff).mean()


def md_term(e, labels):
    C = int(labels.max().item()) + 1
    present = torch.bincount(labels, minlength=C).nonzero().squeeze(1)
    P = present.shape[0]
    if P < 2:
        return e.sum() * 0
    member = labels.unsqueeze(0) == present.unsqueeze(1)
    w = torch.where(member, torch.ones(1, dtype=e.dtype), torch.full((1,), 1e-7, dtype=e.dtype))
    mu = torch.matmul(w.unsqueeze(0), e) / w.sum(1, keepdim=True).unsqueeze(0)
    r = corr_rows(mu)
    off = 1 - torch.eye(P, dtype=e.dtype)
    return (off * (1 + r)).mean()


def ed_term(e):
    k = e.shape[0]
    if k < 2:
        return e.sum() * 0
    s = corr_rows(e.transpose(0, 1))
    off = 1 - torch.eye(k, dtype=e.dtype, device=e.device)
    return (off * (1 + s)).mean()


def check_finite(t, what):
    if not bool(torch.isfinite(t).all().item()):
        raise ValueError(f"Ad-Corre loss: {what} contain NaN or Inf")


class ConfusionWindow:
    """The (truth, prediction) pairs of the last `capacity` samples and their counts."""

    def __init__(self, num_classes, capacity):
        self.C, self.capacity = num_classes, capacity
        self.pairs = deque()
        self.counts = [[0] * num_classes for _ in range(num_classes)]

    def record(self, labels, preds):
        for g, p in zip(labels.tolist(), preds.tolist()):
            if len(self.pairs) == self.capacity:
                og, op = self.pairs.popleft()
                self.counts[og][op] -= 1
            self.pairs.append((g, p))
            self.counts[g][p] += 1

    def matrix(self):
        c = torch.tensor(self.counts, dtype=torch.float64)
        rows = c.sum(1, keepdim=True)
        return torch.where(rows > 0, c / rows.clamp_min(1), torch.zeros_like(c))


def adcorre_terms(logits, embeddings, labels, confusion, weights=None, adaptive=True):
    """As adcorre::loss::adcorre_loss: the terms for a given confusion matrix."""
    C = logits.shape[1]
    w = weights or {"ce": 50.0 / C, "fd": 1.0, "md": 1.0, "ed": 1.0}
    check_finite(logits, "logits")
    ce = F.cross_entropy(logits, labels)
    check_finite(embeddings, "embeddings")
    e = embeddings.to(logits.dtype)
    fd = fd_term(e, labels, confusion if adaptive else None)
    md, ed = md_term(e, labels), ed_term(e)
    total = w["ce"] * ce + w["fd"] * fd + w["md"] * md + w["ed"] * ed
    return {"ce": ce, "fd": fd, "md": md, "ed": ed, "total": total}


class AdCorreLoss:
    """The stateful training loss: records the batch's predictions, then the terms."""

    def __init__(self, num_classes=7, window=1000, adaptive=True):
        self.adaptive = adaptive
        self.window = ConfusionWindow(num_classes, window)

    def __call__(self, logits, embeddings, labels):
        check_finite(logits, "logits")
        self.window.record(labels, logits.detach().argmax(1))
        m = self.window.matrix() if self.adaptive else None
        return adcorre_terms(logits, embeddings, labels, m, adaptive=self.adaptive)
