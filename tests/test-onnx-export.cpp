// ONNX export (adcorre/onnx/onnx_export.h): every preset's graph, and the
// shipped ensemble's, run in OpenCV DNN on real FER-2013 images (preprocessed
// by adcorre's own data::images_to_input) give adcorre's probabilities within
// 1e-4; fixed and dynamic batch; the CLI from a model file and a run folder;
// unwritable paths.
#include <algorithm>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <opencv2/dnn.hpp>
#include <torch/torch.h>

#include "adcorre/data/preprocess.h"
#include "adcorre/infer/predictor.h"
#include "adcorre/models/model_file.h"
#include "adcorre/onnx/onnx_export.h"
#include "adcorre/util/error.h"
#include "test_util.h"

using namespace adcorre;
namespace fsys = std::filesystem;

namespace {

// The first image (by name) of each class folder of FER-2013's val split.
std::vector<std::string> val_images() {
  std::vector<std::string> out;
  const auto shared = test::shared_dir();
  if (shared.empty()) return out;
  const fsys::path val = fsys::path(shared) / "data/fer2013/val";
  if (!fsys::is_directory(val)) return out;
  std::vector<fsys::path> classes;
  for (auto& d : fsys::directory_iterator(val))
    if (d.is_directory()) classes.push_back(d.path());
  std::sort(classes.begin(), classes.end());
  for (auto& c : classes) {
    std::vector<std::string> files;
    for (auto& f : fsys::directory_iterator(c)) files.push_back(f.path().string());
    std::sort(files.begin(), files.end());
    if (!files.empty()) out.push_back(files.front());
  }
  return out;
}

std::vector<cv::Mat> decode_all(const std::vector<std::string>& paths, int channels) {
  std::vector<cv::Mat> out;
  for (auto& p : paths) out.push_back(data::decode_image(p, channels));
  return out;
}

// The ONNX file run by OpenCV DNN on x [N, C, H, W] -> [N, classes].
torch::Tensor run_opencv(const std::string& onnx_path, const torch::Tensor& x) {
  auto net = cv::dnn::readNetFromONNX(onnx_path);
  auto xc = x.contiguous();
  std::vector<int> shape(xc.sizes().begin(), xc.sizes().end());
  cv::Mat blob(static_cast<int>(shape.size()), shape.data(), CV_32F, xc.data_ptr<float>());
  net.setInput(blob);
  cv::Mat out = net.forward().clone();
  EXPECT_EQ(out.dims, 2);
  return torch::from_blob(out.ptr<float>(), {out.size[0], out.size[1]}, torch::kFloat).clone();
}

torch::Tensor reference_probs(models::FerModelImpl& net, const torch::Tensor& x) {
  torch::NoGradGuard ng;
  net.eval();
  return torch::softmax(net.forward(x).logits, 1);
}

// Random BatchNorm statistics and affine terms (a fresh model's are 0/1,
// which would leave the folding untested), and the classifier scaled so the
// logits on x have a standard deviation of 2: probabilities neither near
// uniform nor saturated, either of which would make a 1e-4 comparison weak.
void randomise_for_export(models::FerModelImpl& net, const torch::Tensor& x) {
  torch::NoGradGuard ng;
  for (auto& m : net.modules(false)) {
    if (auto* bn = m->as<torch::nn::BatchNorm2dImpl>()) {
      bn->running_mean.uniform_(-0.2, 0.2);
      bn->running_var.uniform_(0.5, 2.0);
      bn->weight.uniform_(0.5, 1.5);
      bn->bias.uniform_(-0.2, 0.2);
    }
  }
  net.eval();
  const double scale = 2.0 / net.forward(x).logits.std().item<double>();
  for (auto& p : net.named_parameters())
    if (p.key().find("head.classifier.") != std::string::npos) p.value().mul_(scale);
}

TEST(OnnxExport, EveryPresetMatchesAdcorreInOpenCvDnn) {
  const auto images = val_images();
  if (images.size() < 7) GTEST_SKIP() << "needs ../shared/data/fer2013/val";
  torch::manual_seed(7);
  for (const auto& name : models::preset_names()) {
    SCOPED_TRACE(name);
    auto cfg = models::preset(name);
    auto net = models::create_model(cfg);
    // Fewer images for the 224x224 presets: a CPU shared with other work.
    const size_t n = cfg.input_size > 100 ? 3 : images.size();
    auto x = data::images_to_input(decode_all({images.begin(), images.begin() + n}, cfg.in_channels), cfg);
    randomise_for_export(*net, x);
    auto ref = reference_probs(*net, x);
    // A meaningful comparison: probabilities far from uniform, not saturated.
    const double spread = (ref.amax(1) - ref.amin(1)).max().item<double>();
    EXPECT_GT(spread, 0.2) << ref;
    EXPECT_LT(ref.amax(1).min().item<double>(), 0.999) << ref;

    test::TempDir tmp;
    onnx::OnnxExportOptions opts;
    opts.batch = static_cast<int>(n);
    const auto path = tmp / (name + ".onnx");
    onnx::write_onnx(path, cfg, *net, opts);
    auto got = run_opencv(path, x);
    ASSERT_EQ(got.sizes(), ref.sizes());
    EXPECT_LT((got - ref).abs().max().item<double>(), 1e-4) << "onnx\n" << got << "\nadcorre\n" << ref;
    // Probabilities: rows sum to 1.
    EXPECT_LT((got.sum(1) - 1).abs().max().item<double>(), 1e-5);
  }
}

// The shipped model (an ensemble of four, one graph), with a dynamic batch,
// against what `predict` reports: Predictor::classify on the same face crops.
TEST(OnnxExport, ShippedEnsembleGivesPredictorsProbabilitiesAtAnyBatch) {
  const auto images = val_images();
  if (images.size() < 7) GTEST_SKIP() << "needs ../shared/data/fer2013/val";
  const auto model_path = models::default_model_path();
  auto m = models::load_model(model_path);
  ASSERT_EQ(m.config.arch, "ensemble");
  test::TempDir tmp;
  onnx::OnnxExportOptions opts;
  opts.dynamic_batch = true;
  onnx::write_onnx(tmp / "shipped.onnx", m.config, *m.net, opts);

  const auto faces = decode_all(images, m.config.in_channels);
  auto x = data::images_to_input(faces, m.config);
  infer::PredictOptions popts;
  popts.detector.kind = "none";
  infer::Predictor predictor(models::load_model(model_path), popts);
  const auto probs = predictor.classify(faces);
  ASSERT_EQ(probs.size(), faces.size());
  torch::Tensor expected = torch::empty({static_cast<int64_t>(probs.size()), m.config.num_classes()});
  for (size_t i = 0; i < probs.size(); ++i)
    for (size_t c = 0; c < probs[i].size(); ++c) expected[i][c] = probs[i][c];

  auto all = run_opencv(tmp / "shipped.onnx", x);
  EXPECT_LT((all - expected).abs().max().item<double>(), 1e-4) << "onnx\n" << all << "\npredict\n" << expected;
  // The same file at batch 1 and 3.
  auto one = run_opencv(tmp / "shipped.onnx", x.slice(0, 2, 3));
  EXPECT_LT((one - expected.slice(0, 2, 3)).abs().max().item<double>(), 1e-4);
  auto three = run_opencv(tmp / "shipped.onnx", x.slice(0, 0, 3));
  EXPECT_LT((three - expected.slice(0, 0, 3)).abs().max().item<double>(), 1e-4);
}

TEST(OnnxExport, CliWritesAFileOpenCvRuns) {
  const auto images = val_images();
  if (images.empty()) GTEST_SKIP() << "needs ../shared/data/fer2013/val";
  torch::manual_seed(3);
  auto cfg = models::preset("fer-tiny");
  auto net = models::create_model(cfg);
  auto x = data::images_to_input(decode_all({images[0], images[1]}, cfg.in_channels), cfg);
  randomise_for_export(*net, x);
  test::TempDir tmp;
  models::save_model(tmp / "tiny.pt", cfg, *net);
  std::string out;
  ASSERT_EQ(test::run_command(test::adcorre_binary() + " export " + tmp / "tiny.pt" + " --onnx " + tmp / "tiny.onnx" +
                                  " --batch 2",
                              &out, true),
            0)
      << out;
  auto m = models::load_model(tmp / "tiny.pt");
  auto ref = reference_probs(*m.net, x);
  EXPECT_LT((run_opencv(tmp / "tiny.onnx", x) - ref).abs().max().item<double>(), 1e-4);
  // --out and --onnx together are refused.
  EXPECT_NE(test::run_command(test::adcorre_binary() + " export " + tmp / "tiny.pt" + " --onnx " + tmp / "a.onnx" +
                                  " --out " + tmp / "a.pt",
                              &out, true),
            0);
}

// From a run folder: the graph holds the checkpoint's weights, those that
// `export --out` writes, and the temp model file it goes through is gone.
TEST(OnnxExport, CliExportsARunFolder) {
  const auto images = val_images();
  if (images.size() < 2) GTEST_SKIP() << "needs ../shared/data/fer2013/val";
  const auto val = fsys::path(images[0]).parent_path().parent_path().string();
  test::TempDir tmp;
  std::string out;
  ASSERT_EQ(test::run_command(test::adcorre_binary() + " --quiet train --preset fer-tiny --train " + val +
                                  " --epochs 1 --max-steps-per-epoch 2 --batch-size 8 --out " + tmp / "run",
                              &out, true),
            0)
      << out;
  ASSERT_EQ(test::run_command(test::adcorre_binary() + " export " + tmp / "run" + " --raw --dynamic-batch --onnx " +
                                  tmp / "run.onnx",
                              &out, true),
            0)
      << out;
  ASSERT_EQ(test::run_command(test::adcorre_binary() + " export " + tmp / "run" + " --raw --out " + tmp / "run.pt", &out,
                              true),
            0)
      << out;
  std::vector<std::string> names;
  for (auto& f : fsys::directory_iterator(tmp.path)) names.push_back(f.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"run", "run.onnx", "run.pt"}));
  auto m = models::load_model(tmp / "run.pt");
  auto x = data::images_to_input(decode_all({images[0], images[1]}, m.config.in_channels), m.config);
  auto ref = reference_probs(*m.net, x);
  EXPECT_LT((run_opencv(tmp / "run.onnx", x) - ref).abs().max().item<double>(), 1e-4);
}

TEST(OnnxExport, UnwritablePathNamesTheFileAndLeavesNothing) {
  torch::manual_seed(1);
  auto cfg = models::preset("fer-tiny");
  auto net = models::create_model(cfg);
  test::TempDir tmp;
  std::ofstream(tmp / "file") << "not a folder";
  const std::string bad = tmp / "file/model.onnx";  // its parent is a regular file
  try {
    onnx::write_onnx(bad, cfg, *net);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
  }
  // Nothing but the file made above: no partial or temp file.
  int entries = 0;
  for (auto& f : fsys::directory_iterator(tmp.path)) entries += f.path().filename() != "file";
  EXPECT_EQ(entries, 0);
  // The CLI says so too, with a non-zero exit code.
  models::save_model(tmp / "tiny.pt", cfg, *net);
  std::string out;
  EXPECT_NE(test::run_command(test::adcorre_binary() + " export " + tmp / "tiny.pt" + " --onnx " + bad, &out, true), 0);
  EXPECT_NE(out.find(bad), std::string::npos) << out;
}

TEST(OnnxExport, RefusesAnArchItCannotExport) {
  auto cfg = models::preset("fer-tiny");
  auto net = models::create_model(cfg);
  auto other = cfg;
  other.arch = "keras_graph";
  try {
    onnx::onnx_model_bytes(other, *net);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("keras_graph"), std::string::npos) << e.what();
  }
  onnx::OnnxExportOptions opts;
  opts.batch = 0;
  EXPECT_THROW(onnx::onnx_model_bytes(cfg, *net, opts), Error);
}

}  // namespace
