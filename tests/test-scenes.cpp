// The photo-path benchmark: the scene generator (eval/scenes.h), box matching
// and the benchmark itself (eval/scene_bench.h), the crop policy
// (infer/crop_policy.h) and the photo augmentation (data/augment.h).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <set>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "adcorre/data/augment.h"
#include "adcorre/eval/scene_bench.h"
#include "adcorre/eval/scenes.h"
#include "adcorre/infer/crop_policy.h"
#include "adcorre/infer/face_align.h"
#include "adcorre/infer/predictor.h"
#include "adcorre/models/model_file.h"
#include "adcorre/util/error.h"
#include "adcorre/util/fs.h"
#include "synthetic_faces.h"
#include "test_util.h"

using namespace adcorre;
namespace sfs = std::filesystem;

namespace {

const std::vector<std::string> kClasses{"angry", "happy", "sad", "neutral"};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

double mean_abs_diff(const cv::Mat& a, const cv::Mat& b) {
  cv::Mat d;
  cv::absdiff(a, b, d);
  return cv::mean(d)[0];
}

// ---- the generator ----

TEST(Scenes, BoxesInsideLabelsFromFoldersFacePixelsAtTheBox) {
  test::TempDir tmp;
  test::write_synthetic_folders(tmp / "faces", kClasses, 6, 7);
  for (const std::string style : {"single", "multi", "dark", "bright", "jpeg", "mixed"}) {
    eval::SceneOptions o;
    o.style = style;
    o.count = 6;
    o.width = 320, o.height = 240;
    o.seed = 3;
    const std::string out = tmp / ("scenes-" + style);
    const auto made = eval::make_scenes(tmp / "faces", out, o);
    const auto read = eval::read_scene_truth(out);
    ASSERT_EQ(made.size(), 6u) << style;
    ASSERT_EQ(read.size(), 6u) << style;
    for (size_t i = 0; i < read.size(); ++i) {
      const auto& s = read[i];
      EXPECT_EQ(s.file, made[i].file);
      cv::Mat picture = cv::imread(out + "/" + s.file, cv::IMREAD_COLOR);
      ASSERT_EQ(picture.size(), cv::Size(320, 240)) << s.file;
      ASSERT_FALSE(s.faces.empty()) << style << " " << s.file;
      if (style != "multi" && style != "mixed") EXPECT_EQ(s.faces.size(), 1u) << style;
      for (size_t k = 0; k < s.faces.size(); ++k) {
        const auto& f = s.faces[k];
        EXPECT_EQ(f.box, made[i].faces[k].box);
        EXPECT_EQ((f.box & cv::Rect(0, 0, 320, 240)), f.box) << style << " " << s.file;
        EXPECT_EQ(f.box.width, f.box.height);
        EXPECT_LE(std::abs(f.angle), 10.0);
        // The label is the class folder the face came from.
        EXPECT_EQ(f.source.substr(0, f.source.find('/')), f.label) << f.source;
        // The face's pixels are at the box: the box turned upright and shrunk
        // back to 48x48 matches the source image, a box shifted by half its
        // size does not.
        cv::Mat src = cv::imread(tmp / "faces" + "/" + f.source, cv::IMREAD_GRAYSCALE);
        ASSERT_FALSE(src.empty()) << f.source;
        auto back = [&](const cv::Rect& r) {
          cv::Mat c = infer::crop_with_policy(picture, r, {}, -f.angle), g, small;
          cv::cvtColor(c, g, cv::COLOR_BGR2GRAY);
          cv::resize(g, small, src.size(), 0, 0, cv::INTER_AREA);
          return small;
        };
        const double at_box = mean_abs_diff(back(f.box), src);
        const double shifted = mean_abs_diff(back(f.box + cv::Point(f.box.width / 2, 0)), src);
        EXPECT_LT(at_box, f.angle == 0 && style != "jpeg" && style != "mixed" ? 9.0 : 16.0) << style << " " << s.file;
        EXPECT_GT(shifted, at_box + 5) << style << " " << s.file;
      }
    }
  }
}

TEST(Scenes, MultiFacesDoNotOverlap) {
  test::TempDir tmp;
  test::write_synthetic_folders(tmp / "faces", kClasses, 5, 1);
  eval::SceneOptions o;
  o.style = "multi";
  o.count = 8;
  const auto scenes = eval::make_scenes(tmp / "faces", tmp / "out", o);
  size_t several = 0;
  for (const auto& s : scenes) {
    several += s.faces.size() >= 2;
    for (size_t a = 0; a < s.faces.size(); ++a)
      for (size_t b = a + 1; b < s.faces.size(); ++b) EXPECT_EQ((s.faces[a].box & s.faces[b].box).area(), 0) << s.file;
  }
  EXPECT_GE(several, 6u);  // 2-4 faces are asked for; only a crowded picture may hold fewer
}

TEST(Scenes, SameSeedSameBytesOtherSeedOtherBytes) {
  test::TempDir tmp;
  test::write_synthetic_folders(tmp / "faces", kClasses, 4, 2);
  eval::SceneOptions o;
  o.style = "mixed";
  o.count = 4;
  o.seed = 11;
  eval::make_scenes(tmp / "faces", tmp / "a", o);
  eval::make_scenes(tmp / "faces", tmp / "b", o);
  o.seed = 12;
  eval::make_scenes(tmp / "faces", tmp / "c", o);
  for (const std::string f : {"truth.jsonl", "000000.jpg", "000003.jpg"}) {
    EXPECT_EQ(fs::read_file(tmp / "a/" + f), fs::read_file(tmp / "b/" + f)) << f;
  }
  EXPECT_NE(fs::read_file(tmp / "a/000000.jpg"), fs::read_file(tmp / "c/000000.jpg"));
  EXPECT_NE(fs::read_file(tmp / "a/truth.jsonl"), fs::read_file(tmp / "c/truth.jsonl"));
}

TEST(Scenes, EachFaceUsedOnceBeforeRepeating) {
  test::TempDir tmp;
  test::write_synthetic_folders(tmp / "faces", kClasses, 3, 5);  // 12 faces
  eval::SceneOptions o;
  o.count = 12;
  const auto scenes = eval::make_scenes(tmp / "faces", tmp / "out", o);
  std::set<std::string> sources;
  for (const auto& s : scenes) sources.insert(s.faces.at(0).source);
  EXPECT_EQ(sources.size(), 12u);
}

TEST(Scenes, BadOptionsAndBadTruthAreNamed) {
  test::TempDir tmp;
  test::write_synthetic_folders(tmp / "faces", kClasses, 1, 2);
  auto make = [&](eval::SceneOptions o) { return error_of([&] { eval::make_scenes(tmp / "faces", tmp / "out", o); }); };
  eval::SceneOptions o;
  o.style = "cartoon";
  EXPECT_NE(make(o).find("unknown style 'cartoon'"), std::string::npos) << make(o);
  o = {};
  o.count = 0;
  EXPECT_NE(make(o).find("count must be >= 1"), std::string::npos);
  o = {};
  o.width = 50;
  EXPECT_NE(make(o).find("picture size"), std::string::npos);
  o = {};
  o.min_face = 200, o.max_face = 100;
  EXPECT_NE(make(o).find("min_face is larger than max_face"), std::string::npos);
  o = {};
  o.max_face = 481;
  EXPECT_NE(make(o).find("max_face must be 16..480"), std::string::npos);
  EXPECT_NE(error_of([&] { eval::make_scenes(tmp / "missing", tmp / "out", {}); }).find("missing"), std::string::npos);

  sfs::create_directories(tmp / "bad");
  EXPECT_NE(error_of([&] { eval::read_scene_truth(tmp / "bad"); }).find("not found"), std::string::npos);
  fs::write_file_atomic(tmp / "bad/truth.jsonl", "{\"file\":\"a.jpg\",\"faces\":[]}\n{oops\n");
  EXPECT_NE(error_of([&] { eval::read_scene_truth(tmp / "bad"); }).find("truth.jsonl:2: not JSON"), std::string::npos);
  fs::write_file_atomic(tmp / "bad/truth.jsonl", "{\"file\":\"a.jpg\",\"faces\":[{\"box\":[1,2,3,4]}]}\n");
  EXPECT_NE(error_of([&] { eval::read_scene_truth(tmp / "bad"); }).find("truth.jsonl:1: field 'faces[].label'"), std::string::npos);
  fs::write_file_atomic(tmp / "bad/truth.jsonl", "{\"file\":\"a.jpg\",\"faces\":[{\"box\":[1,2,3],\"label\":\"happy\"}]}\n");
  EXPECT_NE(error_of([&] { eval::read_scene_truth(tmp / "bad"); }).find("faces[].box"), std::string::npos);
}

// ---- matching ----

TEST(SceneBench, IouAndOneToOneMatching) {
  EXPECT_DOUBLE_EQ(eval::box_iou({0, 0, 10, 10}, {0, 0, 10, 10}), 1.0);
  EXPECT_DOUBLE_EQ(eval::box_iou({0, 0, 10, 10}, {5, 0, 10, 10}), 50.0 / 150.0);
  EXPECT_DOUBLE_EQ(eval::box_iou({0, 0, 10, 10}, {20, 20, 5, 5}), 0.0);
  // Two detections near one face: the better one is matched, the other stays extra;
  // the second face takes the remaining good detection.
  const std::vector<cv::Rect> truth{{0, 0, 100, 100}, {200, 0, 100, 100}};
  const std::vector<cv::Rect> det{{10, 0, 100, 100}, {2, 2, 100, 100}, {205, 5, 100, 100}, {400, 400, 50, 50}};
  EXPECT_EQ(eval::match_boxes(truth, det, 0.4), (std::vector<int>{1, 2}));
  EXPECT_EQ(eval::match_boxes(truth, {{60, 0, 100, 100}}, 0.4), (std::vector<int>{-1, -1}));  // IoU 0.25
}

// ---- the crop policy ----

TEST(CropPolicy, KnownBoxMapsToKnownSquare) {
  const infer::CropPolicy p{1.25, 0.1, -0.05, "test"};
  // side 1.25 * 80 = 100; centre (140 + 8, 90 - 4) -> origin (98, 36)
  EXPECT_EQ(infer::crop_square({100, 50, 80, 80}, p), cv::Rect(98, 36, 100, 100));
  // A wide box: the side follows the longer edge, the shift each edge.
  EXPECT_EQ(infer::crop_square({0, 0, 100, 50}, {1.0, 0.0, 0.2, ""}), cv::Rect(0, -15, 100, 100));
  EXPECT_EQ(infer::crop_square({10, 10, 40, 40}, infer::margin_policy(0.25)), cv::Rect(0, 0, 60, 60));

  // The crop is exactly those pixels (and border replication outside).
  cv::Mat image(200, 300, CV_8UC3);
  cv::randu(image, 0, 255);
  cv::Mat crop = infer::crop_with_policy(image, {100, 50, 80, 80}, p);
  ASSERT_EQ(crop.size(), cv::Size(100, 100));
  EXPECT_EQ(cv::norm(crop, image(cv::Rect(98, 36, 100, 100)), cv::NORM_INF), 0);
  // The margin form is crop_face's historic behaviour.
  cv::Mat old = infer::crop_face(image, {100, 50, 80, 80}, 0.2);
  EXPECT_EQ(cv::norm(old, infer::crop_with_policy(image, {100, 50, 80, 80}, infer::margin_policy(0.2)), cv::NORM_INF), 0);
  EXPECT_THROW(infer::crop_with_policy(image, {0, 0, 0, 10}, p), Error);
  EXPECT_THROW(infer::crop_with_policy(image, {0, 0, 10, 10}, {0.0, 0, 0, ""}), Error);
  EXPECT_THROW(infer::margin_policy(-0.1), Error);
}

TEST(CropPolicy, FitRecoversAKnownTransform) {
  const infer::CropPolicy truth_policy{0.82, -0.03, 0.07, ""};
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> pos(0, 400), size(50, 200);
  std::normal_distribution<double> noise(0, 0.01);
  std::vector<std::pair<cv::Rect, cv::Rect>> pairs;
  for (int i = 0; i < 200; ++i) {
    const cv::Rect det(pos(rng), pos(rng), size(rng), 0);
    cv::Rect d = det;
    d.height = d.width;
    const double side = d.width * truth_policy.scale * (1 + noise(rng));
    const double cx = d.x + d.width / 2.0 + (truth_policy.shift_x + noise(rng)) * d.width;
    const double cy = d.y + d.height / 2.0 + (truth_policy.shift_y + noise(rng)) * d.height;
    cv::Rect t(static_cast<int>(std::lround(cx - side / 2)), static_cast<int>(std::lround(cy - side / 2)),
               static_cast<int>(std::lround(side)), static_cast<int>(std::lround(side)));
    if (i % 10 == 0) t = cv::Rect(t.x + t.width / 3, t.y, t.width / 2, t.width / 2);  // a loose match
    pairs.push_back({d, t});
  }
  const auto fitted = infer::fit_crop_policy(pairs);
  EXPECT_NEAR(fitted.scale, truth_policy.scale, 0.01);
  EXPECT_NEAR(fitted.shift_x, truth_policy.shift_x, 0.01);
  EXPECT_NEAR(fitted.shift_y, truth_policy.shift_y, 0.01);
  EXPECT_THROW(infer::fit_crop_policy({}), Error);
}

TEST(CropPolicy, PredictUsesTheDetectorsPolicyUnlessAMarginIsGiven) {
  infer::PredictOptions o;
  for (const std::string kind : {"haar", "lbp", "dlib", "blazeface"}) {
    o.detector.kind = kind;
    const auto want = infer::crop_policy_for(kind);
    const auto got = infer::crop_policy_of(o);
    EXPECT_EQ(got.scale, want.scale) << kind;
    EXPECT_EQ(got.shift_x, want.shift_x) << kind;
    EXPECT_EQ(got.shift_y, want.shift_y) << kind;
    // Fitted on training scenes (docs/predict.md): the framing differs from the raw box.
    EXPECT_NE(want.source.find("TRAINING"), std::string::npos) << kind << ": " << want.source;
  }
  o.margin = 0.2;
  EXPECT_DOUBLE_EQ(infer::crop_policy_of(o).scale, 1.4);
  EXPECT_DOUBLE_EQ(infer::crop_policy_of(o).shift_y, 0.0);
  o.margin = 2.5;
  EXPECT_THROW(infer::validate(o), Error);
  // "none": the image is the face, whatever the policy.
  cv::Mat img(30, 40, CV_8UC1, cv::Scalar(7));
  o = {};
  o.detector.kind = "none";
  EXPECT_EQ(infer::crop_for_model(img, {0, 0, 40, 30}, o).size(), img.size());
}

// ---- the benchmark through the Predictor ----

TEST(SceneBench, CountsFoundExtraAndCorrectThroughThePredictor) {
  // The sample photo's face, pasted as the only face of a few scenes.
  test::TempDir tmp;
  cv::Mat photo = cv::imread(std::string(ADCORRE_SOURCE_DIR) + "/examples/astronaut.jpg", cv::IMREAD_GRAYSCALE);
  ASSERT_FALSE(photo.empty());
  const cv::Mat face = photo(cv::Rect(160, 55, 130, 130)).clone();  // full resolution: any crop size is a dataset image
  sfs::create_directories(tmp / "faces/happy");
  cv::imwrite(tmp / "faces/happy/astronaut.png", face);
  eval::SceneOptions so;
  so.count = 3;
  so.min_face = 120, so.max_face = 200;
  eval::make_scenes(tmp / "faces", tmp / "scenes", so);

  auto predictor = infer::Predictor::from_file(models::default_model_path(), {});
  eval::SceneBenchOptions bo;
  eval::SceneSetting whole;
  whole.name = "none";
  whole.predict.detector.kind = "none";  // the whole picture as one box: never the face
  eval::SceneSetting haar;
  haar.name = "haar, policy";
  eval::SceneSetting wide = haar;  // the same boxes, classified in a square three times their size
  wide.name = "haar, margin 1";
  wide.predict.margin = 1.0;
  bo.settings = {whole, haar, wide};
  bo.fit_crop = true;
  const auto j = eval::run_scene_bench(predictor, tmp / "scenes", bo);
  ASSERT_EQ(j["pictures"], 3);
  ASSERT_EQ(j["faces"], 3);
  const auto& r = j["results"];
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0]["detector"], "truth");
  EXPECT_EQ(r[0]["accuracy"], 1.0);  // the shipped model calls the astronaut happy
  EXPECT_EQ(r[1]["recall"], 0.0);
  EXPECT_EQ(r[1]["extra_boxes"], 3);
  EXPECT_EQ(r[1]["phantom_boxes"], 3);  // the whole picture lies mostly outside the face
  EXPECT_EQ(r[1]["accuracy"], 0.0);
  EXPECT_EQ(r[2]["found"], 3);
  EXPECT_EQ(r[2]["extra_boxes"], 0);
  EXPECT_EQ(r[2]["phantom_boxes"], 0);
  EXPECT_GT(r[2]["fitted_crop"]["scale"].get<double>(), 0.5);
  EXPECT_LT(r[2]["fitted_crop"]["scale"].get<double>(), 1.5);
  // Matched by the classified square too: haar's policy barely widens its box.
  EXPECT_EQ(r[2]["recall_crop_box"], 1.0);
  EXPECT_EQ(r[2]["extra_boxes_crop_box"], 0);
  // A square three times the box: the detector found the face (raw box), but
  // what the model classified is not the face's framing (IoU ~ 1/9).
  EXPECT_EQ(r[3]["found"], 3);
  EXPECT_EQ(r[3]["recall_crop_box"], 0.0);
  EXPECT_EQ(r[3]["extra_boxes_crop_box"], 3);
  EXPECT_EQ(r[3]["accuracy_crop_box"], 0.0);
  EXPECT_FALSE(eval::scene_bench_table(j).empty());
  EXPECT_NE(error_of([&] { eval::run_scene_bench(predictor, tmp / "nothing", bo); }).find("truth.jsonl"), std::string::npos);
}

// ---- the photo augmentation ----

TEST(PhotoAugment, SeededChangesPixelsKeepsShape) {
  const auto o = data::augment_preset("photo");
  EXPECT_TRUE(data::augment_enabled(o));
  EXPECT_GT(o.blur_prob, 0);
  EXPECT_GT(o.jpeg_prob, 0);
  EXPECT_GT(o.max_scale, 1.0);
  torch::manual_seed(0);
  auto x = torch::randn({16, 1, 48, 48}).contiguous(torch::MemoryFormat::ChannelsLast);
  auto g1 = at::make_generator<at::CPUGeneratorImpl>(42), g2 = at::make_generator<at::CPUGeneratorImpl>(42),
       g3 = at::make_generator<at::CPUGeneratorImpl>(43);
  auto a = data::augment_batch(x, o, g1), b = data::augment_batch(x, o, g2), c = data::augment_batch(x, o, g3);
  EXPECT_EQ(a.sizes(), x.sizes());
  EXPECT_TRUE(a.is_contiguous(torch::MemoryFormat::ChannelsLast));
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, c));
  EXPECT_GT((a - x).abs().mean().item<double>(), 0.05);

  // Blur and JPEG alone: each changes a smooth image but keeps it close.
  data::AugmentOptions only = data::augment_preset("none");
  only.blur_prob = 1.0, only.blur_max_sigma = 1.5;
  auto smooth = torch::linspace(-1, 1, 48).view({1, 1, 1, 48}).expand({2, 1, 48, 48}).contiguous() +
                0.5 * torch::randn({2, 1, 48, 48});
  auto g4 = at::make_generator<at::CPUGeneratorImpl>(1);
  auto blurred = data::augment_batch(smooth, only, g4);
  EXPECT_LT(blurred.std().item<double>(), smooth.std().item<double>());  // noise smoothed away
  only.blur_prob = 0, only.jpeg_prob = 1.0, only.jpeg_min_quality = 20;
  auto g5 = at::make_generator<at::CPUGeneratorImpl>(1);
  auto coded = data::augment_batch(smooth, only, g5);
  const double change = (coded - smooth).abs().mean().item<double>();
  EXPECT_GT(change, 0.01);
  EXPECT_LT(change, 0.6);
  EXPECT_THROW(data::augment_preset("photos"), Error);
}

}  // namespace
