// The BlazeFace detector of blazeface.h.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include "adcorre/util/error.h"
#include "infer/blazeface.h"
#include "infer/opencv_dnn.h"

namespace adcorre::embedded {
extern const unsigned char blazeface_json[];
extern const std::size_t blazeface_json_size;
extern const unsigned char blazeface_bin[];
extern const std::size_t blazeface_bin_size;
}  // namespace adcorre::embedded

namespace adcorre::infer::detail {

namespace {

constexpr int kInput = 256, kAnchors = 896;

struct Candidate {
  float score;
  cv::Rect2f box;
};

float iou(const cv::Rect2f& a, const cv::Rect2f& b) {
  const float inter = (a & b).area();
  const float uni = a.area() + b.area() - inter;
  return uni > 0 ? inter / uni : 0.f;
}

class BlazeFaceDetector : public FaceDetector {
 public:
  explicit BlazeFaceDetector(const DetectorOptions& opts) : opts_(opts), anchors_(blazeface_anchors()) {
    const char* runtime = std::getenv("ADCORRE_BLAZEFACE_RUNTIME");
    use_libtorch_ = runtime && std::strcmp(runtime, "libtorch") == 0;
    if (use_libtorch_) blazeface_graph();
    else net_ = blazeface_opencv_net();
  }

  std::vector<cv::Rect> detect(const cv::Mat& image) override {
    check(!image.empty(), "face detection: empty image");
    cv::Mat rgb;
    if (image.channels() == 1) cv::cvtColor(image, rgb, cv::COLOR_GRAY2RGB);
    else if (image.channels() == 4) cv::cvtColor(image, rgb, cv::COLOR_BGRA2RGB);
    else cv::cvtColor(image, rgb, cv::COLOR_BGR2RGB);
    // Letterboxed (top-left) so faces keep their shape; the network sees 256x256.
    const int side = std::max(rgb.cols, rgb.rows);
    std::vector<Candidate> cands;
    search(rgb, cv::Rect(0, 0, side, side), cands);
    if (opts_.blazeface_tiles > 1) {
      // Overlapping tiles (a quarter of a tile's side shared with the next),
      // each seen at 256x256 too: small faces get more pixels.
      const int n = opts_.blazeface_tiles;
      const int tile = static_cast<int>(std::ceil(1.25 * side / n));
      const double step = n > 1 ? static_cast<double>(side - tile) / (n - 1) : 0;
      const cv::Rect frame(0, 0, rgb.cols, rgb.rows);
      for (int ty = 0; ty < n; ++ty)
        for (int tx = 0; tx < n; ++tx) {
          const cv::Rect r(static_cast<int>(std::lround(tx * step)), static_cast<int>(std::lround(ty * step)), tile, tile);
          if ((r & frame).area() > 0) search(rgb, r, cands);
        }
    }
    std::stable_sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) { return a.score > b.score; });
    // Weighted non-maximum suppression (MediaPipe's "blending"): each kept face
    // is the score-weighted mean of the boxes that overlap its best one, which
    // steadies the box more than keeping the single best anchor.
    std::vector<cv::Rect2f> kept;
    std::vector<bool> used(cands.size(), false);
    for (size_t i = 0; i < cands.size(); ++i) {
      if (used[i]) continue;
      double wsum = 0, x = 0, y = 0, w = 0, h = 0;
      for (size_t j = i; j < cands.size(); ++j) {
        if (used[j] || iou(cands[i].box, cands[j].box) <= 0.3f) continue;
        used[j] = true;
        const double s = cands[j].score;
        wsum += s, x += s * cands[j].box.x, y += s * cands[j].box.y, w += s * cands[j].box.width, h += s * cands[j].box.height;
      }
      kept.emplace_back(static_cast<float>(x / wsum), static_cast<float>(y / wsum), static_cast<float>(w / wsum), static_cast<float>(h / wsum));
    }
    const cv::Rect frame(0, 0, image.cols, image.rows);
    std::vector<cv::Rect> boxes;
    for (const auto& k : kept) {
      cv::Rect r(cvRound(k.x), cvRound(k.y), cvRound(k.width), cvRound(k.height));
      r &= frame;
      if (r.width >= opts_.min_face && r.height >= opts_.min_face) boxes.push_back(r);
    }
    std::stable_sort(boxes.begin(), boxes.end(), [](const cv::Rect& a, const cv::Rect& b) { return a.area() > b.area(); });
    return boxes;
  }

 private:
  // One pass of the network over the square `region` of `rgb` (parts outside
  // the picture are black), adding its faces in picture coordinates.
  void search(const cv::Mat& rgb, const cv::Rect& region, std::vector<Candidate>& cands) const {
    cv::Mat square(region.height, region.width, CV_8UC3, cv::Scalar::all(0));
    const cv::Rect inside = region & cv::Rect(0, 0, rgb.cols, rgb.rows);
    rgb(inside).copyTo(square(cv::Rect(inside.x - region.x, inside.y - region.y, inside.width, inside.height)));
    cv::Mat small;
    cv::resize(square, small, cv::Size(kInput, kInput), 0, 0, region.width > kInput ? cv::INTER_AREA : cv::INTER_LINEAR);
    const auto [logits, regs] = use_libtorch_ ? blazeface_raw(blazeface_input(small)) : blazeface_raw_opencv(net_, small);
    const float* lg = logits.data_ptr<float>();
    const float* rg = regs.data_ptr<float>();
    const float* an = anchors_.data_ptr<float>();
    const float factor = static_cast<float>(region.width) / kInput;
    const float min_logit = static_cast<float>(std::log(opts_.blazeface_score / (1 - opts_.blazeface_score)));
    for (int i = 0; i < kAnchors; ++i) {
      if (!(lg[i] >= min_logit)) continue;
      const float* r = rg + 16 * i;
      const float cx = an[2 * i] + r[0], cy = an[2 * i + 1] + r[1], w = r[2], h = r[3];
      if (!(w > 0 && h > 0)) continue;
      cands.push_back({1.f / (1.f + std::exp(-lg[i])),
                       cv::Rect2f(region.x + (cx - w / 2) * factor, region.y + (cy - h / 2) * factor, w * factor, h * factor)});
    }
  }

  DetectorOptions opts_;
  torch::Tensor anchors_;
  bool use_libtorch_ = false;
  mutable cv::dnn::Net net_;  // search() is const but a Net's forward() is not
};

const TfjsGraph::Onnx& blazeface_onnx() {
  static const TfjsGraph::Onnx onnx = blazeface_graph().to_onnx({"Identity", "Identity_1", "Identity_2", "Identity_3"});
  return onnx;
}

}  // namespace

const TfjsGraph& blazeface_graph() {
  static const TfjsGraph graph(
      std::string_view(reinterpret_cast<const char*>(embedded::blazeface_json), embedded::blazeface_json_size),
      std::string_view(reinterpret_cast<const char*>(embedded::blazeface_bin), embedded::blazeface_bin_size),
      "the built-in BlazeFace model (models/detectors/blazeface.json)");
  return graph;
}

torch::Tensor blazeface_input(const cv::Mat& rgb256) {
  check(rgb256.type() == CV_8UC3 && rgb256.rows == kInput && rgb256.cols == kInput, "BlazeFace: the input must be 256x256 8-bit RGB");
  cv::Mat c = rgb256.isContinuous() ? rgb256 : rgb256.clone();
  return torch::from_blob(c.data, {1, kInput, kInput, 3}, torch::kUInt8).to(torch::kFloat32).div_(127.5).sub_(1.0);
}

std::pair<torch::Tensor, torch::Tensor> blazeface_raw(const torch::Tensor& input) {
  auto out = blazeface_graph().run(input, {"Identity", "Identity_1", "Identity_2", "Identity_3"});
  auto logits = torch::cat({out[0].reshape({512}), out[1].reshape({384})}).contiguous();
  auto regs = torch::cat({out[2].reshape({512, 16}), out[3].reshape({384, 16})}).contiguous();
  return {logits, regs};
}

cv::dnn::Net blazeface_opencv_net() { return opencv_cpu_net(blazeface_onnx().model, "the built-in BlazeFace model"); }

std::pair<torch::Tensor, torch::Tensor> blazeface_raw_opencv(cv::dnn::Net& net, const cv::Mat& rgb256) {
  check(rgb256.type() == CV_8UC3 && rgb256.rows == kInput && rgb256.cols == kInput, "BlazeFace: the input must be 256x256 8-bit RGB");
  // x / 127.5 - 1, NCHW: blazeface_input's values in the ONNX form's layout.
  net.setInput(cv::dnn::blobFromImage(rgb256, 1.0 / 127.5, cv::Size(), cv::Scalar::all(127.5), false, false));
  const auto& onnx = blazeface_onnx();
  std::vector<cv::Mat> outs;
  net.forward(outs, onnx.outputs);
  check(outs.size() == 4, "BlazeFace: OpenCV DNN gave " + std::to_string(outs.size()) + " outputs, not 4");
  std::vector<torch::Tensor> t;
  for (auto& m : outs) {
    check(m.dims == 4 && m.isContinuous() && m.type() == CV_32F, "BlazeFace: an OpenCV DNN output is not a 4-D float tensor");
    t.push_back(torch::from_blob(m.ptr<float>(), {m.size[0], m.size[1], m.size[2], m.size[3]}, torch::kFloat32)
                    .permute({0, 2, 3, 1})
                    .contiguous());
  }
  auto logits = torch::cat({t[0].reshape({512}), t[1].reshape({384})}).contiguous();
  auto regs = torch::cat({t[2].reshape({512, 16}), t[3].reshape({384, 16})}).contiguous();
  return {logits, regs};
}

torch::Tensor blazeface_anchors() {
  std::vector<float> a;
  for (auto [stride, per_cell] : {std::pair{16, 2}, std::pair{32, 6}}) {
    const int grid = (kInput + stride - 1) / stride;
    for (int y = 0; y < grid; ++y)
      for (int x = 0; x < grid; ++x)
        for (int n = 0; n < per_cell; ++n) {
          a.push_back(stride * (x + 0.5f));
          a.push_back(stride * (y + 0.5f));
        }
  }
  return torch::tensor(a).reshape({kAnchors, 2});
}

std::unique_ptr<FaceDetector> make_blazeface_detector(const DetectorOptions& opts) {
  return std::make_unique<BlazeFaceDetector>(opts);
}

}  // namespace adcorre::infer::detail
