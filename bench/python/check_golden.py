"""Checks both Python Ad-Corre implementations used by `adcorre bench`
(the vectorised PyTorch port and the numpy-loops one) against the golden
values, so the benchmark compares implementations of the same loss.
Usage: python3 check_golden.py [adcorre_golden.json]"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from adcorre_numpy_loops import numpy_adcorre_terms  # noqa: E402
from adcorre_torch import adcorre_terms  # noqa: E402


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    path = sys.argv[1] if len(sys.argv) > 1 else os.environ.get(
        "ADCORRE_GOLDEN", os.path.join(here, "..", "..", "..", "shared", "testdata", "adcorre_golden.json"))
    cases = json.load(open(path))["cases"]
    worst = {"torch": 0.0, "numpy": 0.0}
    for c in cases:
        B, k, d, C = c["B"], c["k"], c["d"], c["C"]  # arrays are stored flat, row-major
        e = np.array(c["embeddings"], dtype=np.float64).reshape(k, B, d)
        logits = np.array(c["logits"], dtype=np.float64).reshape(B, C)
        labels = np.array(c["labels"], dtype=np.int64).reshape(B)
        conf = np.array(c["confusion"], dtype=np.float64).reshape(C, C)
        got_t = adcorre_terms(torch.tensor(logits), torch.tensor(e), torch.tensor(labels), torch.tensor(conf),
                              c["weights"], c["adaptive"])
        got_n = numpy_adcorre_terms(logits, e, labels, conf, c["weights"], c["adaptive"])
        for term, want in c["expected"].items():
            for name, got in (("torch", float(got_t[term])), ("numpy", got_n[term])):
                err = abs(got - want) / max(abs(want), 1e-12)
                worst[name] = max(worst[name], err)
                if err > 1e-6:
                    print(f"FAIL {name} {c['name']} {term}: {got} vs {want}")
    print(json.dumps({"cases": len(cases), "max_rel_error": worst}))
    return 0 if max(worst.values()) <= 1e-6 else 1


if __name__ == "__main__":
    sys.exit(main())
