// BatchingClassifier (infer/batching_classifier.h): faces of concurrent
// callers go through shared forward passes and each caller gets exactly the
// rows Predictor::classify gives it alone; a caller's bad arguments fail that
// caller only. Uses the shipped model (four networks: a pass is long enough
// that callers started together meet in one batch) on real FER-2013 faces.
#include <atomic>
#include <cmath>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include "adcorre/infer/batching_classifier.h"
#include "adcorre/infer/predictor.h"
#include "adcorre/util/error.h"
#include "test_util.h"

using namespace adcorre;
namespace sfs = std::filesystem;

namespace {

struct Fixture {
  std::unique_ptr<infer::Predictor> predictor;
  std::vector<cv::Mat> faces;  // real val faces, one per file
  bool ready() const { return predictor && faces.size() >= 24; }
};

const Fixture& fixture() {
  static const Fixture f = [] {
    Fixture out;
    const std::string model = std::string(ADCORRE_SOURCE_DIR) + "/models/fer2013-compact.pt";
    const std::string val = test::shared_dir() + "/data/fer2013/val";
    if (test::shared_dir().empty() || !sfs::exists(model) || !sfs::exists(val)) return out;
    infer::PredictOptions o;
    o.detector.kind = "none";
    out.predictor = std::make_unique<infer::Predictor>(infer::Predictor::from_file(model, o));
    for (const char* cls : {"happy", "sad", "angry", "surprise"}) {
      std::vector<sfs::path> files;
      for (const auto& e : sfs::directory_iterator(val + "/" + cls)) files.push_back(e.path());
      std::sort(files.begin(), files.end());
      for (size_t i = 0; i < 6 && i < files.size(); ++i) out.faces.push_back(cv::imread(files[i].string(), cv::IMREAD_GRAYSCALE));
    }
    return out;
  }();
  return f;
}

double max_difference(const std::vector<std::vector<double>>& a, const std::vector<std::vector<double>>& b) {
  if (a.size() != b.size()) return INFINITY;
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].size() != b[i].size()) return INFINITY;
    for (size_t j = 0; j < a[i].size(); ++j) worst = std::max(worst, std::abs(a[i][j] - b[i][j]));
  }
  return worst;
}

}  // namespace

TEST(BatchingClassifier, ConcurrentCallersShareBatchesAndGetTheirOwnRows) {
  const Fixture& f = fixture();
  if (!f.ready()) GTEST_SKIP() << "needs ../shared/data/fer2013/val and models/fer2013-compact.pt";
  // Callers with one to three faces each, and what each gets alone.
  constexpr int kCallers = 8;
  std::vector<std::vector<cv::Mat>> mine(kCallers);
  std::vector<std::vector<std::vector<double>>> alone(kCallers);
  for (int c = 0; c < kCallers; ++c) {
    for (int k = 0; k <= c % 3; ++k) mine[c].push_back(f.faces[static_cast<size_t>(3 * c + k) % f.faces.size()]);
    alone[c] = f.predictor->classify(mine[c], "none");
  }
  infer::BatchingClassifier batcher(*f.predictor);
  std::vector<std::vector<std::vector<double>>> got(kCallers);
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < kCallers; ++c)
    threads.emplace_back([&, c] {
      ++ready;
      while (ready.load() < kCallers) std::this_thread::yield();  // start together
      for (int round = 0; round < 3; ++round) got[c] = batcher.classify(mine[c], "none");
    });
  for (auto& t : threads) t.join();
  for (int c = 0; c < kCallers; ++c) EXPECT_LT(max_difference(got[c], alone[c]), 1e-5) << "caller " << c;
  const auto s = batcher.stats();
  EXPECT_EQ(s.requests, 3 * kCallers);
  long long faces = 0;
  for (const auto& m : mine) faces += 3 * static_cast<long long>(m.size());
  EXPECT_EQ(s.faces, faces);
  // Callers that started together met in one pass: fewer passes than calls.
  EXPECT_GE(s.largest_batch, 2);
  EXPECT_LT(s.batches, s.requests);
}

TEST(BatchingClassifier, ALoneCallerIsAnsweredAtOnceAndBigCallersKeepTheirFaces) {
  const Fixture& f = fixture();
  if (!f.ready()) GTEST_SKIP() << "needs ../shared/data/fer2013/val and models/fer2013-compact.pt";
  infer::BatchingClassifier batcher(*f.predictor, /*max_batch_faces=*/4);
  EXPECT_TRUE(batcher.classify({}, "none").empty());
  // More faces than one batch holds: all of them, in order, in one pass.
  const std::vector<cv::Mat> many(f.faces.begin(), f.faces.begin() + 10);
  EXPECT_LT(max_difference(batcher.classify(many, "flip"), f.predictor->classify(many, "flip")), 1e-5);
  EXPECT_EQ(batcher.stats().batches, 1);
  EXPECT_EQ(batcher.stats().faces, 10);
}

TEST(BatchingClassifier, BadArgumentsFailOnlyTheirCaller) {
  const Fixture& f = fixture();
  if (!f.ready()) GTEST_SKIP() << "needs ../shared/data/fer2013/val and models/fer2013-compact.pt";
  infer::BatchingClassifier batcher(*f.predictor);
  const std::vector<cv::Mat> good(f.faces.begin(), f.faces.begin() + 2);
  const auto want = f.predictor->classify(good, "none");
  std::atomic<int> ready{0}, errors{0};
  std::vector<std::string> messages(6);
  std::vector<std::vector<std::vector<double>>> got(6);
  std::vector<std::thread> threads;
  for (int c = 0; c < 6; ++c)
    threads.emplace_back([&, c] {
      ++ready;
      while (ready.load() < 6) std::this_thread::yield();
      try {
        if (c == 1) (void)batcher.classify(good, "mirror");
        else if (c == 3) (void)batcher.classify({good[0], cv::Mat()}, "none");
        else got[c] = batcher.classify(good, "none");
      } catch (const Error& e) {
        ++errors;
        messages[c] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 2);
  EXPECT_NE(messages[1].find("tta must be none or flip (got 'mirror')"), std::string::npos) << messages[1];
  EXPECT_NE(messages[3].find("face 1 is an empty image"), std::string::npos) << messages[3];
  for (int c : {0, 2, 4, 5}) EXPECT_LT(max_difference(got[c], want), 1e-5) << "caller " << c;
}
