"""The Ad-Corre loss computed the way the authors' released Keras code
computes it: numpy on host arrays, np.corrcoef called inside Python loops,
per batch. Written for `adcorre bench` from the definition in
shared/docs/adcorre-loss.md; only the loop structure follows the released
code (argmax per sample, a correlation matrix per embedding for FD, class
maps and np.average per class and embedding for MD, np.corrcoef per sample
for ED, adaptive weights looked up per sample).

numpy has no autograd: this is a forward pass only (in the released code the
three terms carry no gradient for the same reason), so comparing it with
adcorre's forward + backward flatters the numpy side.
"""
import numpy as np


class NumpyConfusionWindow:
    """The last `capacity` (truth, prediction) pairs as two Python lists."""

    def __init__(self, num_classes, capacity):
        self.C, self.capacity = num_classes, capacity
        self.gt, self.pr = [], []

    def record(self, gt, pr):
        self.gt += list(gt)
        self.pr += list(pr)
        self.gt, self.pr = self.gt[-self.capacity:], self.pr[-self.capacity:]

    def matrix(self):
        m = np.zeros((self.C, self.C))
        for g, p in zip(self.gt, self.pr):
            m[g, p] += 1
        rows = m.sum(axis=1, keepdims=True)
        return np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)


def numpy_adcorre_loss(logits, embeddings, labels, window, adaptive=True):
    """The training-time loss: records the batch's predictions (one argmax per
    sample) in the window, then computes the terms with its matrix."""
    B = logits.shape[0]
    preds = np.array([np.argmax(logits[i]) for i in range(B)])
    window.record(labels.tolist(), preds.tolist())
    return numpy_adcorre_terms(logits, embeddings, labels, window.matrix(), adaptive=adaptive)


def numpy_adcorre_terms(logits, embeddings, labels, conf, weights=None, adaptive=True):
    """logits [B, C], embeddings [k, B, d], labels [B], conf [C, C] (numpy arrays);
    weights: {"ce","fd","md","ed"} (default 50/C, 1, 1, 1)."""
    k, B, d = embeddings.shape
    C = logits.shape[1]
    w = weights or {"ce": 50.0 / C, "fd": 1.0, "md": 1.0, "ed": 1.0}

    # CE from logits.
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    ce = -np.mean([logp[i, labels[i]] for i in range(B)])

    # FD: one B x B correlation matrix per embedding.
    phis = [np.corrcoef(embeddings[m]) for m in range(k)]
    omega = np.where(labels[:, None] == labels[None, :], 1.0, -1.0)
    if adaptive:
        miss = np.array([1.0 - conf[labels[i], labels[i]] for i in range(B)])
        weight = (1.0 - np.eye(B)) * (1.0 + miss[None, :] + miss[:, None])
    else:
        weight = np.ones((B, B))
    fd = np.mean([weight * np.abs(omega - phis[m]) for m in range(k)])

    # MD: class maps (weights 1 / 1e-7) and np.average per embedding and class.
    present = [c for c in range(C) if np.any(labels == c)]
    if len(present) < 2:
        md = 0.0
    else:
        c_map = np.array([np.where(labels == c, 1.0, 1e-7) for c in present])
        means = np.array([[np.average(embeddings[m], axis=0, weights=c_map[i]) for i in range(len(present))]
                          for m in range(k)])
        P = len(present)
        md = np.mean([(1.0 - np.eye(P)) * (1.0 + np.corrcoef(means[m])) for m in range(k)])

    # ED: one k x k correlation matrix per sample.
    if k < 2:
        ed = 0.0
    else:
        ed = np.mean([(1.0 - np.eye(k)) * (1.0 + np.corrcoef(embeddings[:, i, :])) for i in range(B)])

    total = w["ce"] * ce + w["fd"] * fd + w["md"] * md + w["ed"] * ed
    return {"ce": float(ce), "fd": float(fd), "md": float(md), "ed": float(ed), "total": float(total)}
