// The BlazeFace detector (src/infer/blazeface_detector.cpp) and the
// TensorFlow.js graph interpreter it runs on (src/infer/tfjs_graph.cpp):
// the network's outputs against TensorFlow.js's own on a fixed input
// (tests/data/blazeface/golden.json, made by tools/blazeface/make_golden.py),
// each operator against a naive loop, and the errors for damaged models.
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include "adcorre/infer/face_detector.h"
#include "adcorre/util/error.h"
#include "infer/blazeface.h"
#include "infer/tfjs_graph.h"

using namespace adcorre;
using namespace adcorre::infer;
using adcorre::infer::detail::TfjsGraph;

namespace {

const std::string kData = std::string(ADCORRE_SOURCE_DIR) + "/tests/data/blazeface/";

nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  EXPECT_TRUE(f.good()) << "cannot read " << path;
  return nlohmann::json::parse(f);
}

std::string bytes_of(const std::vector<float>& v) { return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4); }

std::string b64(const std::string& s) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned v = 0;
  int bits = 0;
  for (unsigned char c : s) {
    v = (v << 8) | c;
    bits += 8;
    while (bits >= 6) out += t[(v >> (bits -= 6)) & 63];
  }
  if (bits) out += t[(v << (6 - bits)) & 63];
  while (out.size() % 4) out += '=';
  return out;
}

// A one-node graph: input [1, H, W, C] -> op(input, filter) with the given attributes.
nlohmann::json one_op_graph(const std::string& op, const nlohmann::json& attr, std::vector<int64_t> in_shape,
                            std::vector<int64_t> filter_shape, bool with_bias = false) {
  nlohmann::json dims = nlohmann::json::array();
  for (auto d : in_shape) dims.push_back({{"size", std::to_string(d)}});
  nlohmann::json nodes = nlohmann::json::array();
  nodes.push_back({{"name", "input"}, {"op", "Placeholder"}, {"attr", {{"shape", {{"shape", {{"dim", dims}}}}}}}});
  nlohmann::json weights = nlohmann::json::array();
  nlohmann::json inputs = {"input"};
  if (!filter_shape.empty()) {
    nodes.push_back({{"name", "filter"}, {"op", "Const"}});
    weights.push_back({{"name", "filter"}, {"shape", filter_shape}, {"dtype", "float32"}});
    inputs.push_back("filter");
  }
  if (with_bias) {
    nodes.push_back({{"name", "bias"}, {"op", "Const"}});
    weights.push_back({{"name", "bias"}, {"shape", {filter_shape.back()}}, {"dtype", "float32"}});
    inputs.push_back("bias");
  }
  nodes.push_back({{"name", "out"}, {"op", op}, {"input", inputs}, {"attr", attr}});
  return {{"format", "graph-model"}, {"modelTopology", {{"node", nodes}}}, {"weightsManifest", {{{"paths", {"w.bin"}}, {"weights", weights}}}}};
}

nlohmann::json conv_attr(const std::string& padding, int stride, nlohmann::json fused = nullptr) {
  nlohmann::json a = {{"padding", {{"s", b64(padding)}}},
                      {"strides", {{"list", {{"i", {"1", std::to_string(stride), std::to_string(stride), "1"}}}}}},
                      {"data_format", {{"s", b64("NHWC")}}}};
  if (!fused.is_null()) a["fused_ops"] = {{"list", {{"s", fused}}}};
  return a;
}

std::vector<float> random_values(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

// TensorFlow's convolution, written out: NHWC input, HWIO filter (or H W C M
// for depthwise), SAME padding puts the odd extra pixel after.
std::vector<float> naive_conv(const std::vector<float>& x, int H, int W, int C, const std::vector<float>& f, int K, int O,
                              int stride, bool same, bool depthwise, const std::vector<float>* bias, bool relu, int& OH, int& OW) {
  OH = same ? (H + stride - 1) / stride : (H - K) / stride + 1;
  OW = same ? (W + stride - 1) / stride : (W - K) / stride + 1;
  const int pt = same ? std::max((OH - 1) * stride + K - H, 0) / 2 : 0;
  const int pl = same ? std::max((OW - 1) * stride + K - W, 0) / 2 : 0;
  const int outc = depthwise ? C * O : O;
  std::vector<float> y(static_cast<size_t>(OH * OW * outc), 0.f);
  for (int oy = 0; oy < OH; ++oy)
    for (int ox = 0; ox < OW; ++ox)
      for (int oc = 0; oc < outc; ++oc) {
        double s = bias ? (*bias)[static_cast<size_t>(oc)] : 0;
        for (int ky = 0; ky < K; ++ky)
          for (int kx = 0; kx < K; ++kx) {
            const int iy = oy * stride + ky - pt, ix = ox * stride + kx - pl;
            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
            if (depthwise) {
              const int c = oc / O, m = oc % O;
              s += x[static_cast<size_t>((iy * W + ix) * C + c)] * f[static_cast<size_t>(((ky * K + kx) * C + c) * O + m)];
            } else {
              for (int c = 0; c < C; ++c)
                s += x[static_cast<size_t>((iy * W + ix) * C + c)] * f[static_cast<size_t>(((ky * K + kx) * C + c) * O + oc)];
            }
          }
        y[static_cast<size_t>((oy * OW + ox) * outc + oc)] = static_cast<float>(relu ? std::max(0.0, s) : s);
      }
  return y;
}

void expect_close(const torch::Tensor& got, const std::vector<float>& want, double tol) {
  ASSERT_EQ(got.numel(), static_cast<int64_t>(want.size()));
  const auto g = got.contiguous();
  for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(g.data_ptr<float>()[i], want[i], tol) << "element " << i;
}

}  // namespace

TEST(TfjsGraph, ConvolutionsMatchANaiveLoop) {
  const int H = 7, W = 6, C = 3, K = 3, O = 4;
  const auto x = random_values(H * W * C, 1), f = random_values(K * K * C * O, 2), b = random_values(O, 3);
  for (const std::string pad : {"SAME", "VALID"})
    for (int stride : {1, 2})
      for (bool relu : {false, true}) {
        SCOPED_TRACE(pad + " stride " + std::to_string(stride) + (relu ? " relu" : ""));
        nlohmann::json fused = relu ? nlohmann::json{b64("BiasAdd"), b64("Relu")} : nlohmann::json{b64("BiasAdd")};
        const auto g = one_op_graph("_FusedConv2D", conv_attr(pad, stride, fused), {1, H, W, C}, {K, K, C, O}, true);
        std::vector<float> w = f;
        w.insert(w.end(), b.begin(), b.end());
        TfjsGraph graph(g.dump(), bytes_of(w), "test graph");
        const auto out = graph.run(torch::from_blob(const_cast<float*>(x.data()), {1, H, W, C}).clone(), {"out"});
        int OH = 0, OW = 0;
        const auto want = naive_conv(x, H, W, C, f, K, O, stride, pad == "SAME", false, &b, relu, OH, OW);
        EXPECT_EQ(out[0].sizes(), (std::vector<int64_t>{1, OH, OW, O}));
        expect_close(out[0], want, 1e-5);
      }
}

TEST(TfjsGraph, DepthwiseConvolutionMatchesANaiveLoop) {
  const int H = 8, W = 8, C = 3, K = 3, M = 2;
  const auto x = random_values(H * W * C, 4), f = random_values(K * K * C * M, 5);
  for (int stride : {1, 2}) {
    const auto g = one_op_graph("DepthwiseConv2dNative", conv_attr("SAME", stride), {1, H, W, C}, {K, K, C, M});
    TfjsGraph graph(g.dump(), bytes_of(f), "test graph");
    const auto out = graph.run(torch::from_blob(const_cast<float*>(x.data()), {1, H, W, C}).clone(), {"out"});
    int OH = 0, OW = 0;
    const auto want = naive_conv(x, H, W, C, f, K, M, stride, true, true, nullptr, false, OH, OW);
    expect_close(out[0], want, 1e-5);
  }
}

TEST(TfjsGraph, DamagedModelsAreClearErrors) {
  const auto g = one_op_graph("DepthwiseConv2dNative", conv_attr("SAME", 1), {1, 4, 4, 1}, {3, 3, 1, 1});
  const std::string w = bytes_of(random_values(9, 6));
  auto message = [](auto&& make) {
    try {
      make();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([&] { TfjsGraph(g.dump(), w.substr(0, 20), "m.json"); }).find("m.json: the weights end at byte 20, before weight filter"), std::string::npos);
  EXPECT_NE(message([&] { TfjsGraph(g.dump(), w + "xxxx", "m.json"); }).find("has 40 bytes, the manifest describes 36"), std::string::npos);
  auto bad_op = g;
  bad_op["modelTopology"]["node"][2]["op"] = "Softmax";
  EXPECT_NE(message([&] { TfjsGraph(bad_op.dump(), w, "m.json"); }).find("node out has op Softmax"), std::string::npos);
  auto dangling = g;
  dangling["modelTopology"]["node"][2]["input"][1] = "nowhere";
  EXPECT_NE(message([&] { TfjsGraph(dangling.dump(), w, "m.json"); }).find("'nowhere' names no node"), std::string::npos);
  EXPECT_NE(message([&] { TfjsGraph("{not json", w, "m.json"); }).find("m.json: not a TensorFlow.js model"), std::string::npos);
  TfjsGraph ok(g.dump(), w, "m.json");
  EXPECT_NE(message([&] { ok.run(torch::zeros({1, 5, 4, 1}), {"out"}); }).find("input dimension 1 is 5, the model takes 4"), std::string::npos);
}

TEST(BlazeFace, OutputsMatchTensorFlowJsOnTheGoldenInput) {
  const auto golden = read_json(kData + "golden.json");
  cv::Mat bgr = cv::imread(kData + "input-256.png", cv::IMREAD_COLOR), rgb;
  ASSERT_FALSE(bgr.empty());
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  const auto [logits, regs] = infer::detail::blazeface_raw(infer::detail::blazeface_input(rgb));
  const auto want = golden["logits"].get<std::vector<float>>();
  ASSERT_EQ(logits.numel(), static_cast<int64_t>(want.size()));
  double worst = 0;
  for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::abs(logits[static_cast<int64_t>(i)].item<double>() - want[i]));
  EXPECT_LT(worst, 2e-3) << "largest logit difference from TensorFlow.js";
  const auto top = golden["top_anchors"].get<std::vector<int64_t>>();
  for (size_t k = 0; k < top.size(); ++k) {
    const auto row = golden["top_regressors"][k].get<std::vector<float>>();
    for (size_t j = 0; j < row.size(); ++j)
      EXPECT_NEAR(regs[top[k]][static_cast<int64_t>(j)].item<double>(), row[j], 2e-2 + 1e-3 * std::abs(row[j])) << "anchor " << top[k] << " value " << j;
  }
  const auto sums = golden["regressor_column_sums"].get<std::vector<double>>();
  const auto got = regs.sum(0);
  for (size_t j = 0; j < sums.size(); ++j) EXPECT_NEAR(got[static_cast<int64_t>(j)].item<double>(), sums[j], 0.5 + 1e-4 * std::abs(sums[j]));
  // The best anchor is the face's, in both runtimes.
  EXPECT_EQ(logits.argmax().item<int64_t>(), top[0]);
}

// The runtime the detector uses: the graph's ONNX form in OpenCV DNN. It must
// give TensorFlow.js' logits on the golden input, and the LibTorch
// interpreter's outputs on a real photo (every logit and regressor).
TEST(BlazeFace, OpenCvDnnFormMatchesTensorFlowJsAndTheInterpreter) {
  const auto golden = read_json(kData + "golden.json");
  cv::Mat bgr = cv::imread(kData + "input-256.png", cv::IMREAD_COLOR), rgb;
  ASSERT_FALSE(bgr.empty());
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  auto net = infer::detail::blazeface_opencv_net();
  const auto [logits, regs] = infer::detail::blazeface_raw_opencv(net, rgb);
  const auto want = golden["logits"].get<std::vector<float>>();
  ASSERT_EQ(logits.numel(), static_cast<int64_t>(want.size()));
  ASSERT_EQ(regs.sizes(), (std::vector<int64_t>{896, 16}));
  double worst = 0;
  for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::abs(logits[static_cast<int64_t>(i)].item<double>() - want[i]));
  EXPECT_LT(worst, 2e-3) << "largest logit difference from TensorFlow.js";
  const auto top = golden["top_anchors"].get<std::vector<int64_t>>();
  EXPECT_EQ(logits.argmax().item<int64_t>(), top[0]);

  cv::Mat photo = cv::imread(std::string(ADCORRE_SOURCE_DIR) + "/examples/astronaut.jpg", cv::IMREAD_COLOR), small;
  ASSERT_FALSE(photo.empty());
  cv::resize(photo, small, cv::Size(256, 256), 0, 0, cv::INTER_AREA);
  cv::cvtColor(small, small, cv::COLOR_BGR2RGB);
  const auto [l_dnn, r_dnn] = infer::detail::blazeface_raw_opencv(net, small);
  const auto [l_ref, r_ref] = infer::detail::blazeface_raw(infer::detail::blazeface_input(small));
  EXPECT_LT((l_dnn - l_ref).abs().max().item<double>(), 1e-3);
  EXPECT_LT(((r_dnn - r_ref).abs() / (1 + r_ref.abs())).max().item<double>(), 1e-3);
  EXPECT_EQ(l_dnn.argmax().item<int64_t>(), l_ref.argmax().item<int64_t>());
}

TEST(BlazeFace, FindsTheAstronautsFaceAndNothingElse) {
  cv::Mat img = cv::imread(std::string(ADCORRE_SOURCE_DIR) + "/examples/astronaut.jpg", cv::IMREAD_COLOR);
  ASSERT_FALSE(img.empty());
  DetectorOptions o;
  o.kind = "blazeface";
  auto det = make_detector(o);
  const auto boxes = det->detect(img);
  ASSERT_EQ(boxes.size(), 1u);
  // Eileen Collins' face: roughly x 165..285, y 55..190 (read off the picture).
  const double cx = boxes[0].x + boxes[0].width / 2.0, cy = boxes[0].y + boxes[0].height / 2.0;
  EXPECT_GT(cx, 190);
  EXPECT_LT(cx, 260);
  EXPECT_GT(cy, 90);
  EXPECT_LT(cy, 165);
  EXPECT_GT(boxes[0].width, 60);
  EXPECT_LT(boxes[0].width, 200);
  // The same face in gray, in a picture twice as wide (letterboxing keeps the shape).
  cv::Mat gray, wide(img.rows, img.cols * 2, CV_8UC1, cv::Scalar(90));
  cv::cvtColor(img, gray, cv::COLOR_BGR2GRAY);
  gray.copyTo(wide(cv::Rect(img.cols, 0, img.cols, img.rows)));
  const auto wide_boxes = det->detect(wide);
  ASSERT_EQ(wide_boxes.size(), 1u);
  EXPECT_NEAR(wide_boxes[0].x - img.cols, boxes[0].x, 12);
  EXPECT_NEAR(wide_boxes[0].y, boxes[0].y, 12);
  EXPECT_NEAR(wide_boxes[0].width, boxes[0].width, 16);
}

TEST(BlazeFace, BlankAndNoisePicturesHaveNoFace) {
  DetectorOptions o;
  o.kind = "blazeface";
  auto det = make_detector(o);
  EXPECT_TRUE(det->detect(cv::Mat(480, 640, CV_8UC3, cv::Scalar(128, 128, 128))).empty());
  cv::Mat noise(480, 640, CV_8UC3);
  cv::randu(noise, 0, 255);
  EXPECT_TRUE(det->detect(noise).empty());
}

TEST(BlazeFace, ScoreAndMinFaceFilter) {
  cv::Mat img = cv::imread(std::string(ADCORRE_SOURCE_DIR) + "/examples/astronaut.jpg", cv::IMREAD_COLOR);
  DetectorOptions o;
  o.kind = "blazeface";
  o.blazeface_score = 0.99;  // the face scores about 0.88
  EXPECT_TRUE(make_detector(o)->detect(img).empty());
  o.blazeface_score = 0.5;
  o.min_face = 300;
  EXPECT_TRUE(make_detector(o)->detect(img).empty());
  o.blazeface_score = 1.0;
  EXPECT_THROW(make_detector(o), Error);
}

TEST(BlazeFace, TilesFindTheSameFaceOnceInPictureCoordinates) {
  // The sample photo shrunk to 384x384 (face about 65 px) near the corner of
  // a 1600x1200 picture: a face of 4 % of the longer side.
  cv::Mat img = cv::imread(std::string(ADCORRE_SOURCE_DIR) + "/examples/astronaut.jpg", cv::IMREAD_COLOR), small;
  ASSERT_FALSE(img.empty());
  cv::resize(img, small, cv::Size(384, 384), 0, 0, cv::INTER_AREA);
  cv::Mat big(1200, 1600, CV_8UC3, cv::Scalar(110, 110, 110));
  const cv::Rect at(1100, 700, 384, 384);
  small.copyTo(big(at));
  // Where the face is: the 512-px sample's face centre (about 221, 120) scaled by 0.75.
  const cv::Point2d want(at.x + 221 * 0.75, at.y + 120 * 0.75);
  for (int tiles : {1, 2, 3, 4}) {
    DetectorOptions o;
    o.kind = "blazeface";
    o.min_face = 20;
    o.blazeface_tiles = tiles;
    const auto boxes = make_detector(o)->detect(big);
    ASSERT_EQ(boxes.size(), 1u) << tiles << " tiles";  // a face seen by several passes is merged into one box
    const cv::Point2d c(boxes[0].x + boxes[0].width / 2.0, boxes[0].y + boxes[0].height / 2.0);
    EXPECT_NEAR(c.x, want.x, 20) << tiles << " tiles";
    EXPECT_NEAR(c.y, want.y, 20) << tiles << " tiles";
    EXPECT_GT(boxes[0].width, 40) << tiles << " tiles";
    EXPECT_LT(boxes[0].width, 110) << tiles << " tiles";
  }
  DetectorOptions bad;
  bad.kind = "blazeface";
  bad.blazeface_tiles = 9;
  EXPECT_THROW(make_detector(bad), Error);
}
