"""Checks the Python Ad-Corre implementations against the golden values:
the two that `adcorre bench` compares with (the vectorised PyTorch port and
the numpy-loops one), and the terms of the training port (train_port.py,
written without host syncs for the GPU ablation of docs/ablation.md).
Usage: python3 check_golden.py [adcorre_golden.json]
Exits 0 when all match, 1 when one does not, 77 (skipped) when numpy or
torch cannot be imported."""
import json
import os
import sys

try:
    import numpy as np
    import torch
except ImportError as e:
    print(f"skipped: {e}")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from adcorre_numpy_loops import numpy_adcorre_terms  # noqa: E402
from adcorre_torch import adcorre_terms  # noqa: E402
import train_port  # noqa: E402


def train_port_terms(logits, e, labels, conf, adaptive):
    """The terms as train_port.Loss computes them (FD, MD, ED; CE without smoothing)."""
    C = logits.shape[1]
    return {"ce": torch.nn.functional.cross_entropy(logits, labels),
            "fd": train_port.fd_term(e, labels, conf if adaptive else None),
            "md": train_port.md_term(e, labels, C), "ed": train_port.ed_term(e)}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    path = sys.argv[1] if len(sys.argv) > 1 else os.environ.get(
        "ADCORRE_GOLDEN", os.path.join(here, "..", "..", "..", "shared", "testdata", "adcorre_golden.json"))
    cases = json.load(open(path))["cases"]
    worst = {"torch": 0.0, "numpy": 0.0, "train_port": 0.0}
    for c in cases:
        B, k, d, C = c["B"], c["k"], c["d"], c["C"]  # arrays are stored flat, row-major
        e = np.array(c["embeddings"], dtype=np.float64).reshape(k, B, d)
        logits = np.array(c["logits"], dtype=np.float64).reshape(B, C)
        labels = np.array(c["labels"], dtype=np.int64).reshape(B)
        conf = np.array(c["confusion"], dtype=np.float64).reshape(C, C)
        got_t = adcorre_terms(torch.tensor(logits), torch.tensor(e), torch.tensor(labels), torch.tensor(conf),
                              c["weights"], c["adaptive"])
        got_n = numpy_adcorre_terms(logits, e, labels, conf, c["weights"], c["adaptive"])
        lt, et = torch.tensor(logits, requires_grad=True), torch.tensor(e, requires_grad=True)
        got_p = train_port_terms(lt, et, torch.tensor(labels), torch.tensor(conf), c["adaptive"])
        got_p["total"] = sum(c["weights"][t] * got_p[t] for t in ("ce", "fd", "md", "ed"))
        got_p["total"].backward()  # the training port's gradients (through MD's masks too)
        for what, got, want in (("grad_logits", lt.grad, c["grad_logits"]), ("grad_embeddings", et.grad, c["grad_embeddings"])):
            want = torch.tensor(want, dtype=torch.float64).reshape(got.shape)
            err = float((got - want).abs().max() / want.abs().max().clamp_min(1e-12))
            worst["train_port"] = max(worst["train_port"], err)
            if err > 1e-6:
                print(f"FAIL train_port {c['name']} {what}: max relative error {err}")
        for term, want in c["expected"].items():
            for name, got in (("torch", float(got_t[term])), ("numpy", got_n[term]), ("train_port", float(got_p[term]))):
                err = abs(got - want) / max(abs(want), 1e-12)
                worst[name] = max(worst[name], err)
                if err > 1e-6:
                    print(f"FAIL {name} {c['name']} {term}: {got} vs {want}")
    print(json.dumps({"cases": len(cases), "max_rel_error": worst}))
    return 0 if max(worst.values()) <= 1e-6 else 1


if __name__ == "__main__":
    sys.exit(main())
