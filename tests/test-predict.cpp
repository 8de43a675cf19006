// The Predictor (detection + classification, thread safety, JSON schema) and
// the `adcorre predict` command end to end: JSON lines, CSV, --top, folder
// recursion, videos, annotation, bad inputs. Uses a random-weight fer-tiny
// model: these tests check the plumbing, not the accuracy.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>
#include <thread>
#include <type_traits>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <torch/torch.h>

#include "adcorre/data/dataset.h"
#include "adcorre/data/loader.h"
#include "adcorre/data/preprocess.h"
#include "adcorre/eval/evaluate.h"
#include "adcorre/infer/annotate.h"
#include "adcorre/infer/face_align.h"
#include "adcorre/infer/inputs.h"
#include "adcorre/infer/predictor.h"
#include "adcorre/models/model_file.h"
#include "adcorre/util/error.h"
#include "adcorre/util/runtime.h"
#include "infer/opencv_classifier.h"
#include "test_util.h"

using namespace adcorre;
using namespace adcorre::infer;
using nlohmann::json;

namespace {

const std::string kSample = std::string(ADCORRE_SOURCE_DIR) + "/examples/astronaut.jpg";

static_assert(std::is_move_constructible_v<Predictor>, "the service keeps predictors in containers");

class PredictTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    model_path_ = *dir_ / "tiny.pt";
    torch::manual_seed(7);
    auto cfg = models::preset("fer-tiny");
    auto net = models::create_model(cfg);
    models::save_model(model_path_, cfg, *net);
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static Predictor predictor(PredictOptions o = {}) { return Predictor::from_file(model_path_, o); }
  static cv::Mat sample() { return cv::imread(kSample, cv::IMREAD_COLOR); }

  // Runs the CLI; returns its exit code, stdout in *out and stderr in *err.
  static int cli(const std::string& args, std::string* out, std::string* err = nullptr) {
    const std::string err_file = *dir_ / "stderr.txt";
    int rc = test::run_command(test::adcorre_binary() + " --threads 1 predict --model '" + model_path_ + "' " + args + " 2>'" + err_file + "'", out);
    if (err) {
      std::ifstream in(err_file);
      std::stringstream ss;
      ss << in.rdbuf();
      *err = ss.str();
    }
    return rc;
  }
  static std::vector<json> json_lines(const std::string& text) {
    std::vector<json> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) lines.push_back(json::parse(line));
    return lines;
  }

  static test::TempDir* dir_;
  static std::string model_path_;
};
test::TempDir* PredictTest::dir_ = nullptr;
std::string PredictTest::model_path_;

double sum(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }

TEST_F(PredictTest, EveryFaceHasProbabilitiesThatSumToOne) {
  auto p = predictor();
  auto faces = p.predict(sample());
  ASSERT_EQ(faces.size(), 1u);
  const auto& names = p.config().class_names;
  for (const auto& f : faces) {
    ASSERT_EQ(f.probs.size(), names.size());
    EXPECT_NEAR(sum(f.probs), 1.0, 1e-6);
    const auto best = std::max_element(f.probs.begin(), f.probs.end()) - f.probs.begin();
    EXPECT_EQ(f.label, names[best]);
    EXPECT_DOUBLE_EQ(f.score, f.probs[best]);
    for (double q : f.probs) EXPECT_GE(q, 0.0);
  }
}

TEST_F(PredictTest, ClassifyUsesTheTrainingPreprocessing) {
  auto p = predictor();
  cv::Mat face = crop_face(sample(), cv::Rect(170, 70, 110, 110), 0.2);
  // The same numbers as running the network on data::images_to_input by hand.
  auto loaded = models::load_model(model_path_);
  torch::NoGradGuard ng;
  auto expected = torch::softmax(loaded.net->forward(data::images_to_input({face}, loaded.config)).logits, 1);
  auto got = p.classify({face});
  ASSERT_EQ(got.size(), 1u);
  for (int c = 0; c < expected.size(1); ++c) EXPECT_NEAR(got[0][c], expected[0][c].item<double>(), 1e-5);
  // A gray model sees the same face from a BGR or a gray copy.
  cv::Mat gray;
  cv::cvtColor(face, gray, cv::COLOR_BGR2GRAY);
  auto from_gray = p.classify({gray});
  for (size_t c = 0; c < got[0].size(); ++c) EXPECT_NEAR(from_gray[0][c], got[0][c], 1e-5);
}

TEST_F(PredictTest, BatchEqualsOneByOneAndFlipAveragesTheMirror) {
  auto p = predictor();
  cv::Mat a = crop_face(sample(), cv::Rect(170, 70, 110, 110), 0.2), b = crop_face(sample(), cv::Rect(300, 300, 90, 90), 0.0);
  auto both = p.classify({a, b});
  auto one = p.classify({a}), two = p.classify({b});
  ASSERT_EQ(both.size(), 2u);
  for (size_t c = 0; c < one[0].size(); ++c) {
    EXPECT_NEAR(both[0][c], one[0][c], 1e-5);
    EXPECT_NEAR(both[1][c], two[0][c], 1e-5);
  }
  cv::Mat mirrored;
  cv::flip(a, mirrored, 1);
  auto m = p.classify({mirrored});
  auto tta = p.classify({a}, "flip");
  for (size_t c = 0; c < one[0].size(); ++c) EXPECT_NEAR(tta[0][c], (one[0][c] + m[0][c]) / 2, 1e-5);
  EXPECT_TRUE(p.classify({}).empty());
  EXPECT_THROW(p.classify({cv::Mat()}), Error);
}

TEST_F(PredictTest, ConcurrentCallsGiveTheSerialAnswers) {
  auto p = predictor();
  const cv::Mat image = sample();
  const auto serial = p.predict(image);
  ASSERT_EQ(serial.size(), 1u);
  std::vector<std::vector<Face>> results(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int r = 0; r < 3; ++r) results[t] = p.predict(image);
    });
  for (auto& t : threads) t.join();
  for (const auto& r : results) {
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].box, serial[0].box);
    for (size_t c = 0; c < r[0].probs.size(); ++c) EXPECT_NEAR(r[0].probs[c], serial[0].probs[c], 1e-6);
  }
}

// A few faces go through OpenCV DNN (infer/opencv_classifier.h), more through
// LibTorch: both give the network's probabilities, for a random fer-tiny and
// for the shipped ensemble (trained weights, four members, BatchNorm folded
// before the ONNX form is made), one face or several, concurrently too.
TEST_F(PredictTest, OpenCvAndLibTorchClassifiersAgree) {
  const cv::Mat image = sample();
  std::vector<cv::Mat> faces{crop_face(image, cv::Rect(170, 70, 110, 110), 0.2), crop_face(image, cv::Rect(300, 300, 90, 90), 0.0),
                             crop_face(image, cv::Rect(20, 200, 150, 120), 0.1)};
  for (const std::string path : {model_path_, std::string(ADCORRE_SOURCE_DIR) + "/models/fer2013-compact.pt"}) {
    SCOPED_TRACE(path);
    auto m = models::load_model_for_inference(path);
    std::string why;
    auto opencv = infer::detail::OpenCvClassifier::try_make(m.config, *m.net, &why);
    ASSERT_TRUE(opencv) << why;
    torch::InferenceMode guard;
    const torch::Tensor x = data::images_to_input(faces, m.config);
    const torch::Tensor want = torch::softmax(m.net->forward(x).logits.to(torch::kFloat), 1);
    const torch::Tensor all = opencv->probabilities(x);
    ASSERT_EQ(all.sizes(), want.sizes());
    EXPECT_LT((all - want).abs().max().item<double>(), 1e-5) << all << want;
    EXPECT_LT((opencv->probabilities(x.slice(0, 1, 2)) - want.slice(0, 1, 2)).abs().max().item<double>(), 1e-5);
    // The trained ensemble is sure of something (a uniform answer would hide a wrong graph).
    if (path != model_path_) EXPECT_GT(want.amax(1).max().item<double>(), 0.5);
    std::vector<torch::Tensor> got(4);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) threads.emplace_back([&, t] {
      c10::InferenceMode g;
      for (int r = 0; r < 3; ++r) got[t] = opencv->probabilities(x);
    });
    for (auto& t : threads) t.join();
    for (const auto& g : got) EXPECT_TRUE(torch::equal(g, all));
  }
  // Predictor: the same answers with either runtime, and a bad setting named.
  struct UnsetAtEnd {
    ~UnsetAtEnd() { unsetenv("ADCORRE_CLASSIFIER_RUNTIME"); }
  } unset_at_end;
  // (The first few-face call runs on LibTorch, the later ones on OpenCV DNN.)
  EXPECT_TRUE(infer::detail::opencv_classifier_enabled());
  auto p = predictor();
  auto first = p.classify(faces), later = p.classify(faces);
  setenv("ADCORRE_CLASSIFIER_RUNTIME", "libtorch", 1);
  EXPECT_FALSE(infer::detail::opencv_classifier_enabled());
  auto q = predictor();
  q.classify(faces);
  auto with_libtorch = q.classify(faces);
  ASSERT_EQ(later.size(), 3u);
  for (size_t i = 0; i < 3; ++i)
    for (size_t c = 0; c < later[i].size(); ++c) {
      EXPECT_NEAR(later[i][c], with_libtorch[i][c], 1e-5);
      EXPECT_NEAR(first[i][c], with_libtorch[i][c], 1e-5);
    }
  setenv("ADCORRE_CLASSIFIER_RUNTIME", "tpu", 1);
  try {
    auto r = predictor();
    r.classify(faces);
    r.classify(faces);
    FAIL() << "an unknown runtime was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("ADCORRE_CLASSIFIER_RUNTIME"), std::string::npos) << e.what();
  }
}

TEST_F(PredictTest, PerCallOptionsAndEdgeCases) {
  auto p = predictor();
  EXPECT_TRUE(p.predict(cv::Mat(240, 320, CV_8UC3, cv::Scalar(90, 90, 90))).empty());
  EXPECT_THROW(p.predict(cv::Mat()), Error);
  PredictOptions whole;
  whole.detector.kind = "none";
  auto crop = p.predict(cv::Mat(64, 48, CV_8UC1, cv::Scalar(10)), whole);
  ASSERT_EQ(crop.size(), 1u);
  EXPECT_EQ(crop[0].box, cv::Rect(0, 0, 48, 64));
  PredictOptions bad;
  bad.margin = -1;
  EXPECT_THROW(p.predict(sample(), bad), Error);
  bad = {};
  bad.tta = "rotate";
  EXPECT_THROW(Predictor::from_file(model_path_, bad), Error);
  try {
    Predictor::from_file(*dir_ / "nope.pt", {});
    FAIL() << "missing model accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nope.pt"), std::string::npos);
  }
}

TEST_F(PredictTest, FaceJsonSchemaAndTopK) {
  Face f;
  f.box = cv::Rect(1, 2, 30, 40);
  f.probs = {0.1, 0.05, 0.05, 0.5, 0.1, 0.15, 0.05};
  f.label = "happy";
  f.score = 0.5;
  const auto names = models::preset("fer-tiny").class_names;
  json j = face_to_json(f, names);
  EXPECT_EQ(j["box"], json({1, 2, 30, 40}));
  EXPECT_EQ(j["label"], "happy");
  EXPECT_EQ(j["probs"].size(), names.size());
  double total = 0;
  for (auto& [k, v] : j["probs"].items()) total += v.get<double>();
  EXPECT_NEAR(total, 1.0, 1e-5);
  json top = face_to_json(f, names, 2);
  ASSERT_EQ(top["probs"].size(), 2u);
  EXPECT_TRUE(top["probs"].contains("happy"));
  EXPECT_TRUE(top["probs"].contains("surprise"));
  EXPECT_EQ(top_classes(f.probs, 3), (std::vector<int>{3, 5, 0}));
  f.probs.pop_back();
  EXPECT_THROW(face_to_json(f, names), Error);
}

TEST_F(PredictTest, AnnotationDrawsOnACopy) {
  const cv::Mat image = sample();
  Face f;
  f.box = cv::Rect(170, 70, 110, 110);
  f.label = "happy";
  f.score = 0.9;
  cv::Mat drawn = draw_faces(image, {f});
  ASSERT_EQ(drawn.size(), image.size());
  EXPECT_GT(cv::norm(drawn, image, cv::NORM_L1), 0);
  EXPECT_EQ(cv::norm(drawn(cv::Rect(0, 300, 100, 100)), image(cv::Rect(0, 300, 100, 100)), cv::NORM_INF), 0);
}

// ---- the command line ----

TEST_F(PredictTest, CliJsonLines) {
  std::string out;
  ASSERT_EQ(cli("'" + kSample + "'", &out), 0);
  auto lines = json_lines(out);
  ASSERT_EQ(lines.size(), 1u);
  const json& r = lines[0];
  EXPECT_EQ(r["input"], kSample);
  EXPECT_FALSE(r.contains("frame"));
  ASSERT_EQ(r["faces"].size(), 1u);
  const json& face = r["faces"][0];
  ASSERT_EQ(face["box"].size(), 4u);
  EXPECT_GT(face["box"][2].get<int>(), 50);
  ASSERT_EQ(face["probs"].size(), 7u);
  double total = 0;
  for (auto& [k, v] : face["probs"].items()) total += v.get<double>();
  EXPECT_NEAR(total, 1.0, 1e-5);
  EXPECT_TRUE(face["probs"].contains(face["label"].get<std::string>()));
  EXPECT_DOUBLE_EQ(face["score"].get<double>(), face["probs"][face["label"].get<std::string>()].get<double>());

  ASSERT_EQ(cli("--top 2 '" + kSample + "'", &out), 0);
  lines = json_lines(out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["faces"][0]["probs"].size(), 2u);
}

TEST_F(PredictTest, CliCsv) {
  const std::string blank = *dir_ / "blank.png";
  cv::imwrite(blank, cv::Mat(120, 160, CV_8UC3, cv::Scalar(200, 200, 200)));
  std::string out, err;
  ASSERT_EQ(cli("--csv '" + kSample + "' '" + blank + "'", &out, &err), 0);
  std::istringstream in(out);
  std::vector<std::string> rows;
  for (std::string line; std::getline(in, line);) rows.push_back(line);
  ASSERT_EQ(rows.size(), 3u);  // header, the face, the blank image's empty row
  EXPECT_EQ(rows[0], "input,frame,face,x,y,w,h,label,score,angry,disgust,fear,happy,sad,surprise,neutral");
  for (const auto& row : rows) EXPECT_EQ(std::count(row.begin(), row.end(), ','), 15) << row;
  EXPECT_EQ(rows[1].rfind(kSample + ",,0,", 0), 0u) << rows[1];
  EXPECT_EQ(rows[2].rfind(blank + ",,,", 0), 0u) << rows[2];
  EXPECT_NE(err.find("no face found in " + blank), std::string::npos) << err;

  ASSERT_EQ(cli("--csv --top 3 '" + kSample + "'", &out), 0);
  EXPECT_EQ(out.substr(0, out.find('\n')), "input,frame,face,x,y,w,h,label,score,label_1,score_1,label_2,score_2,label_3,score_3");
}

TEST_F(PredictTest, CliFoldersAreSearchedRecursively) {
  namespace sfs = std::filesystem;
  const sfs::path root = sfs::path(dir_->path) / "photos";
  sfs::create_directories(root / "b" / "c");
  const cv::Mat image = sample();
  cv::imwrite((root / "a.jpg").string(), image);
  cv::imwrite((root / "b" / "c" / "deep.png").string(), image);
  std::ofstream(root / "b" / "notes.txt") << "not a picture";
  std::string out;
  ASSERT_EQ(cli("--annotate '" + (sfs::path(dir_->path) / "drawn").string() + "' '" + root.string() + "'", &out), 0);
  auto lines = json_lines(out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["input"], (root / "a.jpg").string());
  EXPECT_EQ(lines[1]["input"], (root / "b" / "c" / "deep.png").string());
  // The astronaut's face comes first in both.
  for (const auto& l : lines) {
    ASSERT_GE(l["faces"].size(), 1u);
    const auto& b = l["faces"][0]["box"];
    const int cx = b[0].get<int>() + b[2].get<int>() / 2, cy = b[1].get<int>() + b[3].get<int>() / 2;
    EXPECT_NEAR(cx, 221, 20);
    EXPECT_NEAR(cy, 120, 20);
  }
  // Annotated copies keep the folder layout, the size, and differ from the input.
  cv::Mat drawn = cv::imread((sfs::path(dir_->path) / "drawn" / "b" / "c" / "deep.png").string());
  ASSERT_FALSE(drawn.empty());
  EXPECT_EQ(drawn.size(), image.size());
  EXPECT_GT(cv::norm(drawn, image, cv::NORM_L1), 0);
  EXPECT_TRUE(sfs::exists(sfs::path(dir_->path) / "drawn" / "a.jpg"));
}

TEST_F(PredictTest, CliVideoGivesOneRecordPerSampledFrame) {
  const std::string video = *dir_ / "clip.avi";
  {
    cv::VideoWriter w(video, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), 10, cv::Size(512, 512));
    ASSERT_TRUE(w.isOpened());
    const cv::Mat image = sample();
    for (int i = 0; i < 10; ++i) {
      cv::Mat shifted;  // a slow pan, so the frames differ
      cv::warpAffine(image, shifted, cv::Mat_<double>({2, 3}, {1, 0, double(i), 0, 1, 0}), image.size(), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
      w.write(shifted);
    }
  }
  std::string out, err;
  const std::string drawn_dir = *dir_ / "drawn-video";
  ASSERT_EQ(cli("--every 3 --annotate '" + drawn_dir + "' '" + video + "'", &out, &err), 0) << err;
  auto lines = json_lines(out);
  ASSERT_EQ(lines.size(), 4u);  // frames 0, 3, 6, 9
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i]["input"], video);
    EXPECT_EQ(lines[i]["frame"], 3 * i);
    EXPECT_NEAR(lines[i]["time"].get<double>(), 0.3 * i, 1e-6);
    EXPECT_EQ(lines[i]["faces"].size(), 1u);
  }
  cv::VideoCapture drawn(drawn_dir + "/clip.avi");
  ASSERT_TRUE(drawn.isOpened());
  int frames = 0;
  for (cv::Mat f; drawn.read(f);) ++frames;
  EXPECT_EQ(frames, 4);

  ASSERT_EQ(cli("--max-frames 2 '" + video + "'", &out), 0);
  EXPECT_EQ(json_lines(out).size(), 2u);

  // A damaged copy (the second half gone): the frames before the damage are
  // predicted, and the stop is an error naming the frame, not a silent end.
  std::string bytes;
  {
    std::ifstream in(video, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  const std::string damaged = *dir_ / "damaged.avi";
  std::ofstream(damaged, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  const int rc = cli("'" + damaged + "'", &out, &err);
  const auto got = json_lines(out);
  EXPECT_GT(got.size(), 0u) << err;
  EXPECT_LT(got.size(), 10u) << err;
  EXPECT_EQ(rc, 1) << err;
  EXPECT_NE(err.find(damaged + ": stopped at frame " + std::to_string(got.size())), std::string::npos) << err;
}

// A folder goes through the pipeline (decoding and detection ahead on other
// threads, the faces of several images classified as one batch), yet gives
// the output of predicting each file alone (probabilities to the last digit),
// in the same order, with the bad files' errors in their places, and the same
// exit code.
TEST_F(PredictTest, CliFolderGivesTheOutputOfEachFileAlone) {
  namespace sfs = std::filesystem;
  const sfs::path root = sfs::path(dir_->path) / "mixed";
  sfs::create_directories(root);
  const cv::Mat image = sample();
  std::vector<std::string> files;
  for (int i = 0; i < 4; ++i) {
    cv::Mat shifted;  // different pictures, one face each
    cv::warpAffine(image, shifted, cv::Mat_<double>({2, 3}, {1, 0, 3.0 * i, 0, 1, 2.0 * i}), image.size(),
                   cv::INTER_LINEAR, cv::BORDER_REPLICATE);
    const std::string path = (root / ("img" + std::to_string(i) + (i % 2 ? ".png" : ".jpg"))).string();
    cv::imwrite(path, shifted);
    files.push_back(path);
  }
  const std::string corrupt = (root / "img1b.jpg").string(), blank = (root / "img2b.png").string();
  std::ofstream(corrupt) << "\xff\xd8\xff garbage, not a JPEG";
  cv::imwrite(blank, cv::Mat(120, 160, CV_8UC3, cv::Scalar(90, 90, 90)));  // no face: a record without faces
  files.push_back(corrupt);
  files.push_back(blank);
  std::sort(files.begin(), files.end());
  const std::string err_file = *dir_ / "folder-err.txt";
  auto run = [&](const std::string& threads, const std::string& args, std::string* out, std::string* err) {
    const int rc = test::run_command(test::adcorre_binary() + " --threads " + threads + " predict --model '" +
                                         model_path_ + "' " + args + " 2>'" + err_file + "'",
                                     out);
    std::ifstream in(err_file);
    std::stringstream ss;
    ss << in.rdbuf();
    *err = ss.str();
    return rc;
  };
  auto error_lines = [](const std::string& err) {
    std::string kept;
    std::istringstream lines(err);
    for (std::string line; std::getline(lines, line);)
      if (line.rfind("error: ", 0) == 0 && line.find("nothing could be read") == std::string::npos) kept += line + "\n";
    return kept;
  };
  std::string alone_out, alone_errors;
  int alone_rc = 0;
  for (const auto& f : files) {
    std::string out, err;
    alone_rc = std::max(alone_rc, run("1", "'" + f + "'", &out, &err));
    alone_out += out;
    alone_errors += error_lines(err);
  }
  EXPECT_EQ(json_lines(alone_out).size(), files.size() - 1);
  EXPECT_NE(alone_errors.find(corrupt), std::string::npos) << alone_errors;
  for (const std::string threads : {"1", "2"}) {  // one decoding thread, then two
    SCOPED_TRACE("threads " + threads);
    std::string folder_out, folder_err;
    const int folder_rc = run(threads, "'" + root.string() + "'", &folder_out, &folder_err);
    // Same records in the same order: inputs, boxes and labels exactly;
    // probabilities to the last printed digit (a batch of several faces
    // rounds differently from a batch of one in oneDNN's kernels, 1e-6 at most).
    const auto got = json_lines(folder_out), want = json_lines(alone_out);
    ASSERT_EQ(got.size(), want.size());
    for (size_t r = 0; r < got.size(); ++r) {
      EXPECT_EQ(got[r]["input"], want[r]["input"]);
      ASSERT_EQ(got[r]["faces"].size(), want[r]["faces"].size()) << want[r]["input"];
      for (size_t k = 0; k < got[r]["faces"].size(); ++k) {
        const auto &g = got[r]["faces"][k], &w = want[r]["faces"][k];
        EXPECT_EQ(g["box"], w["box"]);
        EXPECT_EQ(g["label"], w["label"]);
        EXPECT_EQ(g["probs"].size(), w["probs"].size());
        for (auto& [name, p] : w["probs"].items())
          EXPECT_NEAR(g["probs"][name].get<double>(), p.get<double>(), 1.5e-6) << name;
      }
    }
    EXPECT_EQ(error_lines(folder_err), alone_errors) << folder_err;
    EXPECT_EQ(folder_rc, 1) << folder_err;
    EXPECT_EQ(folder_rc, alone_rc);
  }
}

TEST_F(PredictTest, CliBadFilesAreReportedAndSkipped) {
  const std::string corrupt = *dir_ / "corrupt.jpg", text = *dir_ / "readme.txt", missing = *dir_ / "missing.png";
  std::ofstream(corrupt) << "\xff\xd8\xff garbage, not a JPEG";
  std::ofstream(text) << "hello";
  std::string out, err;
  // Every input is tried, but missing results are not a success.
  ASSERT_EQ(cli("'" + corrupt + "' '" + kSample + "' '" + text + "' '" + missing + "'", &out, &err), 1) << err;
  auto lines = json_lines(out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["input"], kSample);
  EXPECT_NE(err.find(corrupt), std::string::npos) << err;
  EXPECT_NE(err.find(text), std::string::npos) << err;
  EXPECT_NE(err.find(missing), std::string::npos) << err;

  // Nothing readable at all: a failure.
  EXPECT_NE(cli("'" + corrupt + "' '" + missing + "'", &out, &err), 0);
  EXPECT_NE(err.find("nothing could be read"), std::string::npos) << err;
}

TEST_F(PredictTest, CliMissingModelAndBadOptionsAreClearErrors) {
  std::string out, err;
  const std::string cmd = test::adcorre_binary() + " predict --model /nonexistent/model.pt '" + kSample + "' 2>&1";
  EXPECT_NE(test::run_command(cmd, &out), 0);
  EXPECT_NE(out.find("/nonexistent/model.pt"), std::string::npos) << out;
  EXPECT_NE(cli("--detector yolo '" + kSample + "'", &out, &err), 0);
  EXPECT_NE(err.find("yolo"), std::string::npos) << err;
  EXPECT_NE(cli("--every 0 '" + kSample + "'", &out, &err), 0);
  EXPECT_NE(err.find("--every"), std::string::npos) << err;
}

// Inputs that used to crash, exhaust memory or end with exit 0 and results
// missing.
TEST_F(PredictTest, CliHostileInputsAreErrorsNotCrashesOrSilentGaps) {
  std::string out, err;
  // A 20000 x 20000 PNG header (a few hundred bytes): refused before decoding.
  const std::string huge = *dir_ / "huge.png";
  {
    cv::Mat small(8, 8, CV_8UC1, cv::Scalar(0));
    std::vector<uchar> png;
    cv::imencode(".png", small, png);
    // IHDR's width and height are the 4+4 bytes after "IHDR" (offset 16);
    // its CRC is not checked by the header reader, which must refuse first.
    for (int i = 0; i < 2; ++i) {
      const uint32_t v = 20000;
      for (int b = 0; b < 4; ++b) png[16 + 4 * i + b] = static_cast<uchar>(v >> (24 - 8 * b));
    }
    std::ofstream(huge, std::ios::binary).write(reinterpret_cast<const char*>(png.data()), png.size());
  }
  EXPECT_EQ(cli("'" + huge + "'", &out, &err), 1);
  EXPECT_NE(err.find("20000 x 20000"), std::string::npos) << err;
  // A device is not read forever.
  EXPECT_EQ(cli("/dev/zero", &out, &err), 1);
  EXPECT_NE(err.find("not a regular file"), std::string::npos) << err;
  // Results that cannot be written are a failure.
  EXPECT_EQ(test::run_command(test::adcorre_binary() + " --threads 1 predict --model '" + model_path_ + "' '" + kSample +
                                  "' >/dev/full 2>/dev/null"),
            1);
  // A file name that is not UTF-8 still gets its record.
  const std::string odd = *dir_ / "caf\xe9.jpg";
  std::filesystem::copy_file(kSample, odd, std::filesystem::copy_options::overwrite_existing);
  ASSERT_EQ(cli("'" + odd + "'", &out, &err), 0) << err;
  auto lines = json_lines(out);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["faces"].size(), 1u);
}

TEST_F(PredictTest, CliOptionsOutOfRangeAreOptionErrors) {
  std::string out, err;
  for (const char* bad : {"--max-side 10", "--max-side -5", "--max-frames -1", "--every -2", "--min-face 0",
                          "--top -1", "--margin -0.5", "--camera -3"}) {
    EXPECT_NE(cli(std::string(bad) + " '" + kSample + "'", &out, &err), 0) << bad;
    const std::string name = std::string(bad).substr(0, std::string(bad).find(' '));
    EXPECT_NE(err.find(name + ":"), std::string::npos) << bad << ": " << err;
    EXPECT_EQ(out, "") << bad;
  }
  EXPECT_EQ(cli("--max-side 0 '" + kSample + "'", &out, &err), 0) << err;
  EXPECT_EQ(cli("--max-side 64 '" + kSample + "'", &out, &err), 0) << err;
  // More threads than cores: a warning and the number of cores.
  ASSERT_EQ(test::run_command(test::adcorre_binary() + " --threads 1000 predict --model '" + model_path_ + "' '" + kSample + "'",
                              &out, true),
            0);
  EXPECT_NE(out.find("more than the"), std::string::npos) << out;
}

// info's architecture overrides are checked like every other option: a
// negative or zero size used to be ignored without a word.
TEST(InfoOptions, OutOfRangeOverridesAreOptionErrors) {
  std::string out;
  for (const char* bad : {"--k -3", "--k 0", "--d -1", "--width -0.5", "--width 0", "--input-size -48",
                          "--channels 2", "--middle-blocks -1"}) {
    EXPECT_NE(test::run_command(test::adcorre_binary() + " info --arch fer-compact " + bad, &out, true), 0) << bad;
    const std::string name = std::string(bad).substr(0, std::string(bad).find(' '));
    EXPECT_NE(out.find(name + ":"), std::string::npos) << bad << ": " << out;
  }
  ASSERT_EQ(test::run_command(test::adcorre_binary() + " info --arch fer-compact --k 3 --d 16 --width 0.25", &out, true), 0)
      << out;
}

// One face is classified on one thread (two threads made predict 4.5x
// slower); big batches and other threads keep every thread.
TEST(PredictThreads, SmallBatchesRunOnOneThreadOfTheCallerOnly) {
  runtime::set_threads(2);
  ASSERT_EQ(at::get_num_threads(), 2);
  {
    runtime::SmallWorkOnOneThread one_face(1);
    EXPECT_EQ(at::get_num_threads(), 1);
    int other = 0;
    std::thread([&] { other = at::get_num_threads(); }).join();
    EXPECT_EQ(other, 2) << "another thread's setting changed";
  }
  EXPECT_EQ(at::get_num_threads(), 2);
  {
    runtime::SmallWorkOnOneThread batch(64);
    EXPECT_EQ(at::get_num_threads(), 2);
  }
  // The answers do not depend on it.
  torch::manual_seed(2);
  auto cfg = models::preset("fer-tiny");
  auto net = models::create_model(cfg);
  net->eval();
  auto x = torch::randn({1, 1, 48, 48});
  torch::NoGradGuard ng;
  auto two = net->forward(x).logits;
  torch::Tensor one;
  {
    runtime::SmallWorkOnOneThread guard(1);
    one = net->forward(x).logits;
  }
  EXPECT_LT((one - two).abs().max().item<float>(), 1e-5);
}

// `adcorre` is a launcher that sets OMP_WAIT_POLICY=PASSIVE before the CLI's
// OpenMP runtime starts, so the CLI starts once (libgomp reports its settings
// once per start with OMP_DISPLAY_ENV=verbose): no second LibTorch start-up.
// A user's own policy is kept; adcorre-cli run directly still ends up passive.
TEST(CliStart, OneStartWithPassiveOpenMpWaits) {
  const std::string cli = test::adcorre_binary();
  auto starts = [](const std::string& out) {
    std::vector<std::string> spins;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);)
      if (auto at = line.find("GOMP_SPINCOUNT = '"); at != std::string::npos) spins.push_back(line.substr(at + 18, line.find('\'', at + 18) - at - 18));
    return spins;
  };
  std::string out;
  ASSERT_EQ(test::run_command("env -u OMP_WAIT_POLICY OMP_DISPLAY_ENV=verbose " + cli + " --version", &out, true), 0) << out;
  if (out.find("GOMP_SPINCOUNT") == std::string::npos) GTEST_SKIP() << "the OpenMP runtime is not libgomp: " << out;
  EXPECT_NE(out.find(ADCORRE_VERSION), std::string::npos) << out;
  if (std::thread::hardware_concurrency() > 1) {
    EXPECT_EQ(starts(out), std::vector<std::string>{"0"}) << out;  // PASSIVE: no spinning, one start
  }
  ASSERT_EQ(test::run_command("OMP_WAIT_POLICY=active OMP_DISPLAY_ENV=verbose " + cli + " --version", &out, true), 0) << out;
  ASSERT_EQ(starts(out).size(), 1u) << out;
  EXPECT_NE(starts(out)[0], "0") << out;  // the user's ACTIVE is kept
  const std::string direct = std::filesystem::path(cli).parent_path() / "adcorre-cli";
  ASSERT_EQ(test::run_command("env -u OMP_WAIT_POLICY OMP_DISPLAY_ENV=verbose " + direct + " --version", &out, true), 0) << out;
  if (std::thread::hardware_concurrency() > 1) {
    ASSERT_FALSE(starts(out).empty()) << out;
    EXPECT_EQ(starts(out).back(), "0") << out;  // it re-executed itself passive
  }
  // The launcher without its CLI says so and fails.
  test::TempDir tmp;
  std::filesystem::copy_file(cli, tmp / "adcorre");
  EXPECT_EQ(test::run_command("'" + (tmp / "adcorre") + "' --version", &out, true), 127) << out;
  EXPECT_NE(out.find("cannot run " + (tmp / "adcorre-cli")), std::string::npos) << out;
}

TEST(PredictInputs, ExpandsFoldersInNameOrderAndKeepsExplicitFiles) {
  test::TempDir dir;
  namespace sfs = std::filesystem;
  sfs::create_directories(dir.path / "x" / "y");
  for (const char* name : {"x/b.PNG", "x/a.jpg", "x/y/c.mp4", "x/skip.txt", "other.dat"}) std::ofstream(dir.path / name) << "?";
  std::vector<std::string> errors;
  auto items = expand_inputs({(dir.path / "x").string(), (dir.path / "other.dat").string(), (dir.path / "gone.jpg").string()}, errors);
  ASSERT_EQ(items.size(), 4u);
  EXPECT_EQ(items[0].relative, "a.jpg");
  EXPECT_EQ(items[1].relative, "b.PNG");
  EXPECT_EQ(items[2].relative, "y/c.mp4");
  EXPECT_EQ(items[2].kind, InputKind::video);
  EXPECT_EQ(items[3].relative, "other.dat");  // explicit: kept, decoding will judge it
  EXPECT_EQ(items[3].kind, InputKind::image);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("gone.jpg"), std::string::npos);
}

}  // namespace

// `adcorre eval --detect`: uncropped photos go through predict's detector and
// crop; a picture without a face is skipped and reported, never guessed.
TEST_F(PredictTest, EvalDetectScoresTheDetectedFaceAndSkipsFacelessImages) {
  const std::string ds = *dir_ / "eval-detect";
  std::filesystem::create_directories(ds + "/happy");
  std::filesystem::create_directories(ds + "/sad");
  std::filesystem::copy_file(kSample, ds + "/happy/astronaut.jpg", std::filesystem::copy_options::overwrite_existing);
  cv::imwrite(ds + "/sad/blank.png", cv::Mat(240, 320, CV_8UC3, cv::Scalar(180, 180, 180)));
  const std::string json_out = *dir_ / "eval-detect.json";
  const std::string err_file = *dir_ / "eval-stderr.txt";
  std::string out;
  ASSERT_EQ(test::run_command(test::adcorre_binary() + " --threads 1 eval --model '" + model_path_ + "' --data '" + ds +
                                  "' --detect " + infer::default_detector_kind() + " --json '" + json_out + "' 2>'" + err_file + "'",
                              &out),
            0)
      << out;
  std::ifstream in(json_out);
  const json j = json::parse(in);
  EXPECT_EQ(j["n"].get<int>(), 1);  // the blank picture was skipped
  EXPECT_EQ(j["detect"], infer::default_detector_kind());
  std::ifstream err_in(err_file);
  std::stringstream err;
  err << err_in.rdbuf();
  EXPECT_NE(err.str().find("blank.png: no face found"), std::string::npos) << err.str();
  // The one scored face got the label predict gives it.
  auto p = predictor();
  const auto faces = p.predict(sample());
  ASSERT_EQ(faces.size(), 1u);
  const auto& names = p.config().class_names;
  const auto happy = std::find(names.begin(), names.end(), "happy") - names.begin();
  const auto predicted = std::find(names.begin(), names.end(), faces[0].label) - names.begin();
  EXPECT_DOUBLE_EQ(j["confusion"][happy][predicted].get<double>(), 1.0);
  // Without detection both pictures are scored as they are.
  ASSERT_EQ(test::run_command(test::adcorre_binary() + " --threads 1 eval --model '" + model_path_ + "' --data '" + ds +
                                  "' --json '" + json_out + "' 2>/dev/null",
                              &out),
            0);
  std::ifstream in2(json_out);
  EXPECT_EQ(json::parse(in2)["n"].get<int>(), 2);
}

namespace {

// Splits one CSV line as RFC 4180 quotes it (no line breaks inside fields here).
std::vector<std::string> csv_split(const std::string& line) {
  std::vector<std::string> f(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted && c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
      f.back() += '"';
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == ',' && !quoted) {
      f.emplace_back();
    } else {
      f.back() += c;
    }
  }
  return f;
}

}  // namespace

// `adcorre eval --predictions`: one row per scored image, keyed and labelled,
// with the probabilities the scores were computed from.
TEST_F(PredictTest, EvalPredictionsHaveOneRowPerScoredImage) {
  const std::string ds = *dir_ / "eval-predictions";
  std::filesystem::create_directories(ds + "/happy");
  std::filesystem::create_directories(ds + "/sad");
  std::filesystem::copy_file(kSample, ds + "/happy/astronaut.jpg", std::filesystem::copy_options::overwrite_existing);
  cv::Mat grey(64, 64, CV_8UC1, cv::Scalar(90));
  cv::circle(grey, {32, 32}, 12, cv::Scalar(200), -1);
  cv::imwrite(ds + "/sad/blank, \"grey\".png", grey);            // a comma and quotes: quoted in the CSV
  std::ofstream(ds + "/sad/broken.jpg") << "not a picture";  // skipped: no row
  const std::string csv_path = *dir_ / "predictions.csv", json_out = *dir_ / "eval-predictions.json";
  std::string out;
  ASSERT_EQ(test::run_command(test::adcorre_binary() + " --threads 1 eval --model '" + model_path_ + "' --data '" + ds +
                                  "' --json '" + json_out + "' --predictions '" + csv_path + "' 2>/dev/null",
                              &out),
            0)
      << out;
  std::ifstream in(csv_path);
  std::vector<std::vector<std::string>> rows;
  for (std::string line; std::getline(in, line);) rows.push_back(csv_split(line));
  auto m = models::load_model(model_path_);
  const auto& names = m.config.class_names;
  ASSERT_EQ(rows.size(), 3u);  // header + 2 readable images
  std::vector<std::string> header{"key", "label", "predicted"};
  for (const auto& n : names) header.push_back("p_" + n);
  EXPECT_EQ(rows[0], header);
  // The probabilities are the model's on each image, in the dataset's order.
  auto cache = data::build_cache(eval::match_classes(data::read_dataset(ds), names), m.config, {1, false, true});
  auto probs = eval::predict_probs(*m.net, m.config, cache.pixels);
  ASSERT_EQ(cache.size(), 2);
  int correct = 0;
  for (int i = 0; i < 2; ++i) {
    const auto& r = rows[i + 1];
    ASSERT_EQ(r.size(), 3 + names.size());
    EXPECT_EQ(r[0], cache.keys[i]);
    EXPECT_EQ(r[1], names[cache.labels[i].item<int64_t>()]);
    double total = 0, best = -1;
    std::string argmax;
    for (size_t k = 0; k < names.size(); ++k) {
      const double p = std::stod(r[3 + k]);
      EXPECT_NEAR(p, probs[i][k].item<double>(), 2e-6) << r[0] << " " << names[k];
      total += p;
      if (p > best) best = p, argmax = names[k];
    }
    EXPECT_NEAR(total, 1.0, 1e-4);
    EXPECT_EQ(r[2], argmax);
    correct += r[1] == r[2];
  }
  EXPECT_EQ(rows[1][0], "happy/astronaut.jpg");
  EXPECT_EQ(rows[2][0], "sad/blank, \"grey\".png");
  std::ifstream jin(json_out);
  EXPECT_DOUBLE_EQ(json::parse(jin)["accuracy"].get<double>(), correct / 2.0);
  // An unwritable path is an error naming it.
  std::string err_out;
  EXPECT_NE(test::run_command(test::adcorre_binary() + " --threads 1 eval --model '" + model_path_ + "' --data '" + ds +
                                  "' --predictions '" + (*dir_ / "no-such-dir/p.csv") + "'",
                              &err_out, true),
            0);
  EXPECT_NE(err_out.find("no-such-dir/p.csv"), std::string::npos) << err_out;
}

// `adcorre eval` on FER+ scores the majority vote (FERPlus' test rule):
// an image without an emotion majority is left out; plurality on request.
TEST_F(PredictTest, EvalScoresFerPlusByTheMajorityVote) {
  const std::string ds = *dir_ / "ferplus-map";
  std::filesystem::create_directories(ds + "/val/x");
  for (const char* name : {"a", "b", "c"})
    std::filesystem::copy_file(kSample, ds + "/val/x/" + name + ".jpg", std::filesystem::copy_options::overwrite_existing);
  std::ofstream(ds + "/map.csv") << "file,usage,ferplus_votes\n"
                                    "val/x/a.jpg,PublicTest,2 0 0 1 7 0 0 0 0 0\n"   // anger 7 of 9 after the single vote
                                    "val/x/b.jpg,PublicTest,4 3 3 0 0 0 0 0 0 0\n"   // neutral 4 of 10: no majority
                                    "val/x/c.jpg,PublicTest,1 9 0 0 0 0 0 0 0 0\n";  // happiness
  const std::string json_out = *dir_ / "ferplus.json";
  const std::string base = test::adcorre_binary() + " --threads 1 eval --model '" + model_path_ + "' --data '" + ds +
                           "/map.csv' --split val --json '" + json_out + "'";
  std::string out;
  ASSERT_EQ(test::run_command(base + " 2>/dev/null", &out), 0) << out;
  EXPECT_NE(out.find("labels: FER+ majority vote"), std::string::npos) << out;
  EXPECT_NE(out.find("samples 2 "), std::string::npos) << out;
  EXPECT_EQ(json::parse(std::ifstream(json_out)).value("ferplus_vote", ""), "majority");
  ASSERT_EQ(test::run_command(base + " --data-options ferplus-vote=plurality 2>/dev/null", &out), 0) << out;
  EXPECT_NE(out.find("labels: FER+ most-voted column (plurality), 3 images"), std::string::npos) << out;
  EXPECT_NE(out.find("samples 3 "), std::string::npos) << out;
  EXPECT_EQ(json::parse(std::ifstream(json_out)).value("ferplus_vote", ""), "plurality");
}

// predict reports the classes of the model it is given: a FER+ model's
// eight, contempt included (a fresh eight-class network, and the shipped
// FER+ model where the checkout has it).
TEST(PredictClasses, AnEightClassFerPlusModelGetsEightClassesInTheOutput) {
  test::TempDir tmp;
  auto cfg = models::preset("fer-tiny");
  cfg.class_names = {"neutral", "happy", "surprise", "sad", "angry", "disgust", "fear", "contempt"};
  torch::manual_seed(5);
  models::save_model(tmp / "ferplus-tiny.pt", cfg, *models::create_model(cfg));
  std::vector<std::string> models{tmp / "ferplus-tiny.pt"};
  const std::string shipped = std::string(ADCORRE_SOURCE_DIR) + "/models/ferplus-compact.pt";
  if (std::filesystem::exists(shipped)) models.push_back(shipped);
  for (const auto& m : models) {
    SCOPED_TRACE(m);
    std::string out;
    ASSERT_EQ(test::run_command(test::adcorre_binary() + " --threads 1 predict --model '" + m + "' '" + kSample + "' 2>/dev/null", &out), 0) << out;
    const auto r = json::parse(out.substr(0, out.find('\n')));
    ASSERT_EQ(r["faces"].size(), 1u) << out;
    const auto& probs = r["faces"][0]["probs"];
    ASSERT_EQ(probs.size(), 8u) << out;
    for (const auto& name : cfg.class_names) EXPECT_TRUE(probs.contains(name)) << name;
  }
}

// The shipped FER+ model reproduces its card (docs/models.md): FER+ PublicTest
// by the majority vote, no TTA, 3,199 images, 85.93 %.
TEST(ShippedFerPlusModel, ReproducesItsCardOnFerPlusPublicTest) {
  const std::string model = std::string(ADCORRE_SOURCE_DIR) + "/models/ferplus-compact.pt";
  const std::string map = test::shared_dir() + "/data/fer2013/fer2013_to_ferplus.csv";
  if (test::shared_dir().empty() || !std::filesystem::exists(map)) GTEST_SKIP() << "no ../shared FER+ map";
  ASSERT_TRUE(std::filesystem::exists(model));
  test::TempDir tmp;
  const std::string json_out = tmp / "card.json";
  std::string out;
  ASSERT_EQ(test::run_command(test::adcorre_binary() + " eval --model '" + model + "' --data '" + map +
                                  "' --split val --json '" + json_out + "' 2>&1",
                              &out),
            0)
      << out;
  const auto j = json::parse(std::ifstream(json_out));
  EXPECT_EQ(j.value("ferplus_vote", ""), "majority");
  EXPECT_EQ(j.value("n", 0), 3199);
  EXPECT_EQ(j["classes"].size(), 8u);
  EXPECT_NEAR(j.value("accuracy", 0.0), 0.8593, 0.002) << out;  // float rounding of BLAS builds only
}
