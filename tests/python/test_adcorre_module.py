"""The Python module `adcorre` against the CLI it wraps (run by ctest as
test-python-module, with PYTHONPATH=<build>/python and ADCORRE_BINARY set)."""
import json
import os
import shutil
import subprocess

import numpy as np
import pytest

import adcorre

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PHOTO = os.path.join(ROOT, "examples", "astronaut.jpg")
CLI = os.environ.get("ADCORRE_BINARY", os.path.join(ROOT, "build", "adcorre"))
VAL = os.path.join(os.path.dirname(ROOT), "shared", "data", "fer2013", "val")
TOL = 2e-6  # the CLI rounds probabilities to 6 decimals


@pytest.fixture(scope="module")
def rec():
    return adcorre.Recognizer()


def cli_json(*args):
    out = subprocess.run([CLI, *args], capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def assert_same(cli_faces, faces):
    assert len(faces) == len(cli_faces) >= 1
    for e, g in zip(cli_faces, faces):
        assert list(g["box"]) == e["box"]
        assert g["label"] == e["label"]
        assert g["score"] == pytest.approx(e["score"], abs=TOL)
        assert list(g["probs"]) == list(e["probs"])
        for c, p in e["probs"].items():
            assert g["probs"][c] == pytest.approx(p, abs=TOL)


def test_path_gives_the_cli_answer(rec):
    cli = cli_json("predict", PHOTO)[0]["faces"]
    assert_same(cli, rec.recognize_fer(img_path=PHOTO))
    assert_same(cli, rec.predict(PHOTO))


def test_bgr_array_gives_the_cli_answer(rec):
    cv2 = pytest.importorskip("cv2")
    img = cv2.imread(PHOTO)  # H x W x 3, uint8, BGR
    assert_same(cli_json("predict", PHOTO)[0]["faces"], rec.predict(img))
    # a non-contiguous view (mirrored: negative strides) is read as the image it shows
    mirrored = img[:, ::-1]
    assert not mirrored.flags["C_CONTIGUOUS"]
    assert rec.predict(mirrored) == rec.predict(np.ascontiguousarray(mirrored))


def test_gray_array_is_the_gray_image(tmp_path):
    # a synthetic gray crop written losslessly (PGM): array and file must agree
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, size=(60, 50), dtype=np.uint8)
    pgm = tmp_path / "crop.pgm"
    pgm.write_bytes(b"P5 50 60 255\n" + gray.tobytes())
    r = adcorre.Recognizer(detector="none")
    from_array, from_file = r.predict(gray), r.predict(str(pgm))
    assert len(from_array) == 1 and from_array[0]["box"] == (0, 0, 50, 60)
    assert from_array[0]["probs"] == pytest.approx(from_file[0]["probs"], abs=1e-5)
    assert sum(from_array[0]["probs"].values()) == pytest.approx(1.0, abs=1e-5)
    # the same picture as H x W x 3 gives the same answer as the gray one
    bgr = np.repeat(gray[:, :, None], 3, axis=2)
    assert r.predict(bgr)[0]["probs"] == pytest.approx(from_array[0]["probs"], abs=1e-5)


def test_missing_image_names_the_file(rec, tmp_path):
    missing = str(tmp_path / "no-such-photo.jpg")
    with pytest.raises(FileNotFoundError, match="no-such-photo.jpg"):
        rec.predict(missing)


def test_unreadable_image_names_the_file(rec, tmp_path):
    bad = tmp_path / "not-an-image.jpg"
    bad.write_text("hello")
    with pytest.raises(adcorre.Error, match="not-an-image.jpg"):
        rec.predict(str(bad))
    assert issubclass(adcorre.Error, RuntimeError)


def test_bad_model_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        adcorre.Recognizer(model=str(tmp_path / "nope.pt"))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\0" * 100)
    with pytest.raises(adcorre.Error, match="junk.pt"):
        adcorre.Recognizer(model=str(junk))


def test_bad_arrays_and_options(rec):
    with pytest.raises(TypeError, match="uint8"):
        rec.predict(np.zeros((48, 48), dtype=np.float32))
    with pytest.raises(ValueError, match="H x W"):
        rec.predict(np.zeros((2, 48, 48, 3), dtype=np.uint8))
    with pytest.raises(adcorre.Error, match="detector"):
        adcorre.Recognizer(detector="eyes")


def test_info_and_load_model(rec):
    info = rec.info()
    assert os.path.isfile(info["model_path"])
    assert info["class_names"] == rec.class_names and len(rec.class_names) == 7
    assert info["input_size"] == info["config"]["input_size"] > 0
    r = adcorre.Recognizer()
    r.load_model(info["model_path"])
    assert r.info()["model_path"] == info["model_path"]


@pytest.mark.skipif(not os.path.isdir(VAL), reason="FER-2013 val folder not present")
def test_evaluate_matches_cli_eval(rec, tmp_path):
    # three images of each class, as class folders
    data = tmp_path / "mini"
    for cls in sorted(os.listdir(VAL)):
        (data / cls).mkdir(parents=True)
        for name in sorted(os.listdir(os.path.join(VAL, cls)))[:3]:
            shutil.copy(os.path.join(VAL, cls, name), data / cls / name)
    got = rec.evaluate(str(data))
    out = tmp_path / "eval.json"
    subprocess.run([CLI, "eval", "--data", str(data), "--json", str(out)], capture_output=True, check=True)
    want = json.loads(out.read_text())
    assert got["n"] == want["n"] == 21
    assert got["accuracy"] == pytest.approx(want["accuracy"], abs=1e-9)
    assert got["mean_class_accuracy"] == pytest.approx(want["mean_class_accuracy"], abs=1e-9)
