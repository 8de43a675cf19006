"""Runs the Ad-Corre ablation at the shipped model's full schedule with the
PyTorch port (train_port.py), all runs at once on one CUDA GPU, within a
wall-time budget (docs/ablation.md, "Full schedule on a GPU").

Rows: CE, Ad-Corre, Ad-Corre without adaptive weights; seeds 1 and 2;
fer-compact at width 1, 25 epochs, the shipped model's recipe. Once the
first epoch shows the speed, CE and Ad-Corre at 50 epochs (seed 1) are added
if the projection says they finish inside the budget.

Usage: python3 gpu_ablation.py PACK_PREFIX OUT_DIR [BUDGET_SECONDS]
Writes OUT_DIR/runs/NAME.{log,json}, then OUT_DIR/results.json (every run's
result) and OUT_DIR/summary.txt (a table).
"""
import glob
import json
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    pack, out = sys.argv[1], sys.argv[2]
    budget = float(sys.argv[3]) if len(sys.argv) > 3 else 520
    os.makedirs(os.path.join(out, "runs"), exist_ok=True)
    start = time.time()
    procs = {}

    def launch(name, epochs, *args):
        left = budget - (time.time() - start)
        cmd = [sys.executable, "-u", os.path.join(HERE, "train_port.py"), "--pack", pack,
               "--config", os.path.join(HERE, "fer-compact.json"), "--width", "1", "--epochs", str(epochs),
               "--deadline", str(max(left - 15, 1)), "--out", os.path.join(out, "runs", name + ".json"), *args,
               *os.environ.get("ADCORRE_PORT_EXTRA", "").split()]  # e.g. "--width 0.25 --max-steps 2" for a smoke run
        log = open(os.path.join(out, "runs", name + ".log"), "w")
        procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        print(f"[{time.time() - start:5.0f} s] started {name}", flush=True)

    for seed in (1, 2):
        launch(f"adcorre-s{seed}", 25, "--loss", "adcorre", "--seed", str(seed))
        launch(f"ce-s{seed}", 25, "--loss", "ce", "--seed", str(seed))
        launch(f"nonadaptive-s{seed}", 25, "--loss", "adcorre", "--no-adaptive", "--seed", str(seed))

    long_runs_decided = False
    while any(p.poll() is None for p in procs.values()):
        time.sleep(2)
        if long_runs_decided:
            continue
        times = []
        for f in glob.glob(os.path.join(out, "runs", "*-s?.log")):
            m = re.search(r"epoch 1/25 .*\(([\d.]+) s\)", open(f).read())
            if m:
                times.append(float(m.group(1)))
        if len(times) == 6:
            long_runs_decided = True
            t = max(times)  # one epoch with six runs sharing the GPU
            elapsed = time.time() - start
            # Eight runs share the GPU until the 25-epoch ones end, then two.
            projected = elapsed + 24 * t * 8 / 6 + 25 * t * 2 / 6 + 20
            print(f"[{elapsed:5.0f} s] epoch 1 took {t:.1f} s with 6 runs; 50-epoch runs would end at "
                  f"~{projected:.0f} s of {budget:.0f}", flush=True)
            if projected < budget:
                launch("adcorre-e50-s1", 50, "--loss", "adcorre", "--seed", "1")
                launch("ce-e50-s1", 50, "--loss", "ce", "--seed", "1")
    for name, p in procs.items():
        print(f"{name}: exit {p.returncode}", flush=True)

    results = []
    for f in sorted(glob.glob(os.path.join(out, "runs", "*.json"))):
        results.append(json.load(open(f)))
    json.dump(results, open(os.path.join(out, "results.json"), "w"), indent=1)
    lines = [f"{'run':<34} {'done':<5} {'raw':>7} {'flip':>7} {'ema':>7} {'mca raw':>8} {'s':>5}"]
    for r in results:
        lines.append(f"{r['name']:<34} {str(r['completed']):<5} {100 * r['val_accuracy_raw_none']:7.2f} "
                     f"{100 * r['val_accuracy_raw_flip']:7.2f} {100 * r['val_accuracy_ema_none']:7.2f} "
                     f"{100 * r['val_mean_class_accuracy_raw_none']:8.2f} {r['seconds']:5.0f}")
    rows = {}
    for r in results:
        if r["completed"] and r["epochs"] == 25:
            key = r["loss"] + ("" if r["adaptive"] else "-nonadaptive")
            rows.setdefault(key, []).append(100 * r["val_accuracy_raw_none"])
    for key, v in rows.items():
        spread = statistics.stdev(v) if len(v) > 1 else 0.0
        lines.append(f"{key}: mean {statistics.mean(v):.2f} +- {spread:.2f} over {len(v)} seeds")
    open(os.path.join(out, "summary.txt"), "w").write("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
