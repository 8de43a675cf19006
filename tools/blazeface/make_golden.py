#!/usr/bin/env python3
"""Makes the BlazeFace golden test data (run once, offline; not part of the build).

The detector's network is the TensorFlow.js graph model shipped in the npm
package @vladmandic/human (models/blazeface.{json,bin}, MIT; the network is
MediaPipe's BlazeFace, Apache-2.0). adcorre runs that graph with its own
interpreter (src/infer/tfjs_graph.cpp); this script records what the
package's own runtime (TensorFlow.js, CPU backend) computes on one fixed input
so tests/test-face-detector.cpp can compare the two.

  python3 tools/blazeface/make_golden.py --tfjs DIR_WITH_NODE_MODULES --out tests/data/blazeface

DIR_WITH_NODE_MODULES: a folder where `npm install @tensorflow/tfjs-core@4
@tensorflow/tfjs-converter@4 @tensorflow/tfjs-backend-cpu@4` was run.
Writes input-256.png (the 256x256 RGB input, lossless) and golden.json.
"""
import argparse, json, os, subprocess, sys, tempfile

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

NODE = r"""
const fs = require('fs');
const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
const tfc = require('@tensorflow/tfjs-converter');
(async () => {
  await tf.setBackend('cpu');
  const [json, bin, raw, out] = process.argv.slice(2);
  const m = JSON.parse(fs.readFileSync(json));
  const w = fs.readFileSync(bin);
  const model = await tfc.loadGraphModel(tf.io.fromMemory({
    modelTopology: m.modelTopology, weightSpecs: m.weightsManifest[0].weights,
    weightData: w.buffer.slice(w.byteOffset, w.byteOffset + w.byteLength), format: m.format}));
  const u8 = fs.readFileSync(raw);
  const x = tf.tensor(Float32Array.from(u8, (v) => v / 127.5 - 1), [1, 256, 256, 3]);
  const names = ['Identity', 'Identity_1', 'Identity_2', 'Identity_3'];
  const res = model.execute(x, names);
  const o = {};
  for (let i = 0; i < names.length; i++) o[names[i]] = {shape: res[i].shape, data: Array.from(res[i].dataSync())};
  fs.writeFileSync(out, JSON.stringify(o));
})();
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tfjs", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--image", default=os.path.join(ROOT, "examples", "astronaut.jpg"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    img = cv2.imread(a.image)
    h, w = img.shape[:2]
    side = max(h, w)  # letterboxed onto a black square, as the C++ detector does
    sq = np.zeros((side, side, 3), np.uint8)
    sq[:h, :w] = img
    rgb = cv2.cvtColor(cv2.resize(sq, (256, 256), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
    cv2.imwrite(os.path.join(a.out, "input-256.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    models = os.path.join(ROOT, "models", "detectors")
    with tempfile.TemporaryDirectory() as tmp:
        raw, js, res = (os.path.join(tmp, n) for n in ("in.u8", "run.js", "out.json"))
        rgb.tofile(raw)
        with open(js, "w") as f:
            f.write(NODE)
        env = dict(os.environ, NODE_PATH=os.path.join(a.tfjs, "node_modules"))
        subprocess.run(["node", js, os.path.join(models, "blazeface.json"), os.path.join(models, "blazeface.bin"), raw, res],
                       check=True, env=env)
        out = json.load(open(res))
    # Rows in the detector's anchor order: the 16x16 grid (512), then 8x8 (384).
    reg = np.concatenate([np.array(out["Identity_2"]["data"]).reshape(512, 16), np.array(out["Identity_3"]["data"]).reshape(384, 16)])
    cls = np.concatenate([np.array(out["Identity"]["data"]), np.array(out["Identity_1"]["data"])])
    top = np.argsort(-cls)[:16]
    golden = {
        "source": "TensorFlow.js 4 CPU backend, @vladmandic/human 3.3.6 models/blazeface.json on input-256.png (x/127.5-1); tools/blazeface/make_golden.py",
        "logits": [round(float(v), 5) for v in cls],
        "top_anchors": [int(i) for i in top],
        "top_regressors": [[round(float(v), 4) for v in reg[i]] for i in top],
        "regressor_column_sums": [round(float(v), 3) for v in reg.sum(0)],
    }
    with open(os.path.join(a.out, "golden.json"), "w") as f:
        json.dump(golden, f)
    print("top logits", [round(float(cls[i]), 3) for i in top[:4]], "anchors", top[:4].tolist())


if __name__ == "__main__":
    sys.exit(main())
