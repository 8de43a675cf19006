#!/usr/bin/env python3
"""Drives Debian's headless chromium against a running `adcorre serve` page.

Speaks the Chrome DevTools protocol over --remote-debugging-pipe (JSON
messages separated by NUL bytes on file descriptors 3 and 4), so it needs only
the Python standard library and no network port of its own. Steps:
  1. load the page and wait until it has read /v1/model;
  2. put the photo into the file input (DOM.setFileInputFiles), as a person
     choosing a file would, and wait for the result to be rendered;
  3. check it: state "done", at least one face, one bar chart per face with a
     bar per class, the picture and a box drawn on the canvas;
  4. save a screenshot; with --webcam, also take a snapshot from chromium's
     fake camera and check that a result is rendered for it;
  5. check that the page made no request to any other origin and threw no
     JavaScript error.
Exit status: 0 when every check passes, 1 otherwise (the reason on stderr).
"""
import argparse
import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time


class Failure(Exception):
    pass


class Browser:
    def __init__(self, chromium, extra_flags):
        self.user_dir = tempfile.mkdtemp(prefix="adcorre-chromium-")
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()

        def wire_fds():  # in the child: chromium reads fd 3 and writes fd 4
            a = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--user-data-dir=" + self.user_dir,
                 "--remote-debugging-pipe", "--window-size=1280,900"] + extra_flags + ["about:blank"]
        self.log = open(os.path.join(self.user_dir, "chromium.log"), "w+")
        self.proc = subprocess.Popen([chromium] + flags, preexec_fn=wire_fds, close_fds=False,
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buffer = b""
        self.next_id = 0
        self.events = []

    def send(self, method, params=None, session=None, timeout=30):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.time() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise Failure(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def _read(self, deadline):
        while b"\0" not in self.buffer:
            left = deadline - time.time()
            if left <= 0:
                raise Failure("chromium did not answer in time")
            ready, _, _ = select.select([self.from_chrome], [], [], left)
            if ready:
                chunk = os.read(self.from_chrome, 1 << 20)
                if not chunk:
                    raise Failure("chromium closed the pipe (crashed?); see " + self.log.name)
                self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(raw)

    def pump(self, seconds):
        """Collects events for a while (used while waiting on page state)."""
        deadline = time.time() + seconds
        try:
            while time.time() < deadline:
                ready, _, _ = select.select([self.from_chrome], [], [], max(0, deadline - time.time()))
                if not ready:
                    break
                chunk = os.read(self.from_chrome, 1 << 20)
                if not chunk:
                    break
                self.buffer += chunk
                while b"\0" in self.buffer:
                    raw, self.buffer = self.buffer.split(b"\0", 1)
                    self.events.append(json.loads(raw))
        except OSError:
            pass

    def close(self):
        try:
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.to_chrome)
        os.close(self.from_chrome)
        self.log.seek(0)
        log = self.log.read()
        self.log.close()
        shutil.rmtree(self.user_dir, ignore_errors=True)
        return log


class Page:
    def __init__(self, browser):
        self.b = browser
        targets = browser.send("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        self.session = browser.send("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Network", "DOM"):
            self.send(domain + ".enable")

    def send(self, method, params=None, timeout=30):
        return self.b.send(method, params, self.session, timeout)

    def eval(self, expression):
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "userGesture": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            raise Failure(f"page script failed: {expression[:80]}: {r['exceptionDetails'].get('text')} "
                          f"{r['exceptionDetails'].get('exception', {}).get('description', '')}")
        return r["result"].get("value")

    def wait_for(self, expression, timeout, what):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = self.eval(expression)
            if value:
                return value
            self.b.pump(0.1)
        status = self.eval("document.getElementById('status').textContent")
        raise Failure(f"timed out after {timeout}s waiting for {what} ({expression}); status: {status!r}")

    def screenshot(self, path):
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))


# The checks run inside the page; they return a list of problems ("" when fine).
CHECK_RENDERED = r"""
(() => {
  const problems = [];
  const r = window.adcorreLast;
  if (!r) return ["no result object"];
  const faces = r.faces.length;
  if (document.body.dataset.faces !== String(faces)) problems.push("data-faces != result");
  const cards = document.querySelectorAll("#results .face");
  if (cards.length !== faces) problems.push(`${cards.length} face cards for ${faces} faces`);
  cards.forEach((c, i) => {
    const bars = c.querySelectorAll(".bar");
    const n = Object.keys(r.faces[i].probs).length;
    if (bars.length !== n) problems.push(`face ${i + 1}: ${bars.length} bars for ${n} classes`);
    const top = c.querySelector(".bar.top .name");
    if (!top || top.textContent !== r.faces[i].label) problems.push(`face ${i + 1}: top bar is not the label`);
    const fill = c.querySelector(".bar.top .fill");
    const want = r.faces[i].score * 100;
    if (!fill || Math.abs(parseFloat(fill.style.width) - want) > 0.2) problems.push(`face ${i + 1}: top bar width != score`);
  });
  const cv = document.getElementById("view");
  if (cv.style.display !== "block" || cv.width < 50 || cv.height < 50) { problems.push("canvas not shown"); return problems; }
  const ctx = cv.getContext("2d");
  const px = ctx.getImageData(0, 0, cv.width, cv.height).data;
  let min = 255, max = 0;
  for (let i = 0; i < px.length; i += 4 * 97) { min = Math.min(min, px[i]); max = Math.max(max, px[i]); }
  if (max - min < 30) problems.push("canvas looks blank");
  // The first face's box is drawn in #e6194b: look for that colour on its top edge.
  if (faces) {
    const s = cv.width / r.image.width;
    const [x, y, w] = r.faces[0].box.map((v) => v * s);
    let hit = 0;
    for (let dx = -4; dx <= 4; dx++) for (let dy = -3; dy <= 3; dy++) {
      const p = ctx.getImageData(Math.round(x + w / 2) + dx, Math.round(y) + dy, 1, 1).data;
      if (Math.abs(p[0] - 230) < 30 && Math.abs(p[1] - 25) < 30 && Math.abs(p[2] - 75) < 30) hit++;
    }
    if (!hit) problems.push("no box colour on the first face's top edge");
  }
  return problems;
})()
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="the service's page, e.g. http://127.0.0.1:8080/")
    ap.add_argument("--image", required=True, help="photo to upload")
    ap.add_argument("--screenshot", required=True, help="PNG to write")
    ap.add_argument("--chromium", default=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    ap.add_argument("--webcam", action="store_true", help="also test a snapshot from chromium's fake camera")
    ap.add_argument("--min-faces", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=60)
    a = ap.parse_args()

    origin = a.url.split("/", 3)
    origin = "/".join(origin[:3])
    flags = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"] if a.webcam else []
    browser = Browser(a.chromium, flags)
    ok = False
    try:
        page = Page(browser)
        page.send("Page.navigate", {"url": a.url})
        page.wait_for("document.readyState === 'complete' && document.querySelectorAll('#detector option').length > 0",
                      a.timeout, "the page and its model information")

        root = page.send("DOM.getDocument")["root"]["nodeId"]
        node = page.send("DOM.querySelector", {"nodeId": root, "selector": "#file"})["nodeId"]
        page.send("DOM.setFileInputFiles", {"files": [os.path.abspath(a.image)], "nodeId": node})
        state = page.wait_for("['done', 'error'].includes(document.body.dataset.state) && document.body.dataset.state",
                              a.timeout, "the prediction to be rendered")
        if state != "done":
            raise Failure("the page shows an error: " + page.eval("document.getElementById('status').textContent"))
        faces = int(page.eval("document.body.dataset.faces"))
        if faces < a.min_faces:
            raise Failure(f"the page found {faces} faces, expected at least {a.min_faces}")
        problems = page.eval(CHECK_RENDERED)
        if problems:
            raise Failure("rendering: " + "; ".join(problems))
        labels = page.eval("Array.from(document.querySelectorAll('#results .face h3')).map(h => h.textContent)")
        page.screenshot(a.screenshot)
        print(f"photo: {faces} face(s): {labels}; screenshot {a.screenshot}")

        if a.webcam:
            page.eval("document.body.dataset.state = 'idle'; document.getElementById('camera').click()")
            page.wait_for("document.getElementById('video').videoWidth > 0 && !document.getElementById('snap').disabled",
                          a.timeout, "the fake webcam")
            page.eval("document.getElementById('snap').click()")
            state = page.wait_for("['done', 'error'].includes(document.body.dataset.state) && document.body.dataset.state",
                                  a.timeout, "the snapshot's prediction")
            if state != "done":
                raise Failure("snapshot: the page shows an error: " + page.eval("document.getElementById('status').textContent"))
            dims = page.eval("[window.adcorreLast.image.width, window.adcorreLast.image.height, "
                             "document.getElementById('video').videoWidth, document.getElementById('video').videoHeight]")
            if dims[0] != dims[2] or dims[1] != dims[3]:
                raise Failure(f"snapshot: the server saw {dims[0]}x{dims[1]}, the camera gives {dims[2]}x{dims[3]}")
            problems = [p for p in page.eval(CHECK_RENDERED) if "box colour" not in p and "blank" not in p]
            if problems:
                raise Failure("snapshot rendering: " + "; ".join(problems))
            root, ext = os.path.splitext(a.screenshot)
            page.screenshot(root + "-webcam" + ext)
            print(f"webcam snapshot: {dims[0]}x{dims[1]}, {page.eval('document.body.dataset.faces')} face(s)")

        browser.pump(0.2)
        foreign, errors = [], []
        for e in browser.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Network.requestWillBeSent":
                url = p["request"]["url"]
                if not (url.startswith(origin + "/") or url.startswith("data:") or url.startswith("blob:")):
                    foreign.append(url)
            elif m == "Runtime.exceptionThrown":
                errors.append(p["exceptionDetails"].get("exception", {}).get("description") or p["exceptionDetails"].get("text"))
            elif m == "Runtime.consoleAPICalled" and p.get("type") == "error":
                errors.append(" ".join(str(x.get("value", x.get("description", ""))) for x in p.get("args", [])))
        if foreign:
            raise Failure("the page requested other origins: " + ", ".join(foreign))
        if errors:
            raise Failure("JavaScript errors: " + " | ".join(errors))
        ok = True
    except Failure as e:
        print("FAIL: " + str(e), file=sys.stderr)
    finally:
        log = browser.close()
        if not ok and log:
            print("--- chromium log (tail) ---\n" + log[-3000:], file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
