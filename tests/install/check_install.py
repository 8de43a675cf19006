#!/usr/bin/env python3
"""The installed tree works on its own: `cmake --install` into a temp prefix,
then, against that prefix only,
  - the example consumer (examples/consumer, find_package(adcorre)) configures,
    builds and reports on the sample photo what `build/adcorre predict` says,
    with the shipped model found in <prefix>/share/adcorre/models;
  - the same example compiled with `pkg-config --cflags --libs adcorre` does too;
  - the installed CLI predicts the same without being told a model;
  - the installed Python module gives the same faces.
Run by ctest (test-install):  check_install.py BUILD_DIR SOURCE_DIR
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

TOL = 2e-6  # the CLI rounds probabilities to 6 decimals


def run(cmd, **kw):
    print("+", " ".join(cmd), flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"FAILED ({r.returncode}): {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
    return r.stdout


def faces_of_cli(out):
    records = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len(records) == 1, f"expected one record, got {out!r}"
    return records[0]["faces"]


def faces_of_example(out):
    lines = out.splitlines()
    assert lines and lines[0].startswith("model "), f"no model line in {out!r}"
    return lines[0][len("model "):], [json.loads(line) for line in lines[1:]]


def same_faces(expected, got, what):
    assert len(expected) == len(got) and expected, f"{what}: {len(got)} faces, the CLI found {len(expected)}"
    for e, g in zip(expected, got):
        assert list(e["box"]) == list(g["box"]), f"{what}: box {g['box']} != CLI {e['box']}"
        assert e["label"] == g["label"], f"{what}: label {g['label']} != CLI {e['label']}"
        assert abs(e["score"] - g["score"]) < TOL, f"{what}: score {g['score']} != CLI {e['score']}"
        assert e["probs"].keys() == g["probs"].keys(), f"{what}: classes {list(g['probs'])}"
        for c, p in e["probs"].items():
            assert abs(p - g["probs"][c]) < TOL, f"{what}: p({c}) {g['probs'][c]} != CLI {p}"
    print(f"ok: {what}: {len(got)} face(s), {got[0]['label']} {got[0]['score']:.4f} at {list(got[0]['box'])}")


def main():
    build, source = (os.path.abspath(a) for a in sys.argv[1:3])
    photo = os.path.join(source, "examples", "astronaut.jpg")
    env = {k: v for k, v in os.environ.items() if k != "ADCORRE_MODEL"}
    expected = faces_of_cli(run([os.path.join(build, "adcorre"), "predict", photo], env=env))

    with tempfile.TemporaryDirectory(prefix="adcorre-install-") as tmp:
        prefix = os.path.join(tmp, "prefix")
        run(["cmake", "--install", build, "--prefix", prefix])
        for must in ["bin/adcorre", "include/adcorre/api/recognizer.h", "share/adcorre/models/fer2013-compact.pt"]:
            assert os.path.exists(os.path.join(prefix, must)), f"not installed: {must}"
        libdir = next(os.path.join(prefix, d) for d in ["lib", "lib64", "lib/x86_64-linux-gnu"]
                      if os.path.isdir(os.path.join(prefix, d, "cmake", "adcorre")))
        models_dir = os.path.realpath(os.path.join(prefix, "share", "adcorre", "models"))

        # 1. find_package(adcorre) from the installed tree only.
        ex_build = os.path.join(tmp, "example")
        run(["cmake", "-S", os.path.join(source, "examples", "consumer"), "-B", ex_build, "-G", "Ninja",
             "-DCMAKE_BUILD_TYPE=Release", f"-DCMAKE_PREFIX_PATH={prefix}"])
        run(["cmake", "--build", ex_build])
        model, faces = faces_of_example(run([os.path.join(ex_build, "fer-example"), photo], env=env, cwd=tmp))
        assert os.path.realpath(model).startswith(models_dir + os.sep), \
            f"the example used {model}, not the installed model in {models_dir}"
        same_faces(expected, faces, "example consumer (CMake package)")

        # 2. pkg-config
        if shutil.which("pkg-config"):
            pc_env = dict(env, PKG_CONFIG_PATH=os.path.join(libdir, "pkgconfig"))
            flags = run(["pkg-config", "--cflags", "--libs", "adcorre"], env=pc_env).split()
            exe = os.path.join(tmp, "fer-example-pc")
            run(["c++", "-std=c++17", "-O1", os.path.join(source, "examples", "consumer", "main.cpp"), "-o", exe,
                 *flags, f"-Wl,-rpath,{libdir}"], env=pc_env)
            _, faces = faces_of_example(run([exe, photo], env=env, cwd=tmp))
            same_faces(expected, faces, "example consumer (pkg-config)")

        # 3. the installed CLI finds the installed model by itself
        cli = os.path.join(prefix, "bin", "adcorre")
        same_faces(expected, faces_of_cli(run([cli, "predict", photo], env=env, cwd=tmp)), "installed CLI")

        # 4. the installed Python module
        pydir = os.path.join(prefix, "lib", "python3", "dist-packages")
        if os.path.isdir(pydir):
            code = ("import adcorre, json, sys; r = adcorre.Recognizer(); "
                    "print(json.dumps({'model': r.info()['model_path'], 'faces': r.recognize_fer(img_path=sys.argv[1]),"
                    " 'where': adcorre.__file__}))")
            out = json.loads(run([sys.executable, "-c", code, photo], env=dict(env, PYTHONPATH=pydir), cwd=tmp))
            assert os.path.realpath(out["where"]).startswith(os.path.realpath(prefix)), f"imported {out['where']}"
            assert os.path.realpath(out["model"]).startswith(models_dir + os.sep), f"Python used {out['model']}"
            same_faces(expected, out["faces"], "installed Python module")
        else:
            print("note: no Python module installed (built without pybind11)")


if __name__ == "__main__":
    main()
