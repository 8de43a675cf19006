// Dataset readers (FER-2013 CSV, FER+, RAF-DB, AffectNet, class folders),
// bad input, data-check and the streaming loader, on small fixtures each test
// writes itself; plus the shared FER-2013 counts when ../shared is present.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <torch/torch.h>

#include "adcorre/data/class_names.h"
#include "adcorre/data/data_check.h"
#include "adcorre/data/dataset.h"
#include "adcorre/data/loader.h"
#include "adcorre/data/readers.h"
#include "adcorre/data/stream.h"
#include "adcorre/util/error.h"
#include "adcorre/util/fs.h"
#include "test_util.h"

using namespace adcorre;
using namespace adcorre::data;
namespace sfs = std::filesystem;

namespace {

void write_text(const std::string& path, const std::string& text) {
  sfs::create_directories(sfs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

// A gray image whose pixels encode `seed`, so images are told apart.
cv::Mat pattern(int w, int h, int seed) {
  cv::Mat m(h, w, CV_8UC1);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) m.at<uint8_t>(y, x) = static_cast<uint8_t>((x * 3 + y * 7 + seed * 31) % 256);
  return m;
}

void write_image(const std::string& path, const cv::Mat& m) {
  sfs::create_directories(sfs::path(path).parent_path());
  ASSERT_TRUE(cv::imwrite(path, m)) << path;
}

// The 2304 space-separated pixels of a 48x48 pattern.
std::string pixel_text(int seed) {
  cv::Mat m = pattern(48, 48, seed);
  std::string s;
  for (int i = 0; i < 48 * 48; ++i) s += (i ? " " : "") + std::to_string(m.data[i]);
  return s;
}

models::ModelConfig gray48() {
  models::ModelConfig c;
  c.input_size = 48;
  c.in_channels = 1;
  return c;
}

// Expects `f` to throw adcorre::Error whose message holds every piece.
void expect_error(const std::function<void()>& f, const std::vector<std::string>& pieces) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one containing '" << pieces[0] << "'";
  } catch (const Error& e) {
    for (auto& p : pieces) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what() << "\n  lacks: " << p;
  }
}

int64_t count_of(const Dataset& ds, const std::string& name) {
  auto c = ds.class_counts();
  for (size_t i = 0; i < ds.classes.size(); ++i)
    if (ds.classes[i] == name) return c[i];
  return -1;
}

// ---------------------------------------------------------------- FER-2013 CSV

// 3 Training rows (labels 0, 3, 6), 2 PublicTest (3, 4), 1 PrivateTest (5).
std::string fer2013_fixture(const test::TempDir& tmp) {
  std::string csv = "emotion,pixels,Usage\n";
  const std::vector<std::pair<int, std::string>> rows{{0, "Training"},   {3, "Training"},   {6, "Training"},
                                                      {3, "PublicTest"}, {4, "PublicTest"}, {5, "PrivateTest"}};
  for (size_t i = 0; i < rows.size(); ++i)
    csv += std::to_string(rows[i].first) + "," + pixel_text(static_cast<int>(i)) + "," + rows[i].second + "\r\n";
  write_text(tmp / "fer2013.csv", csv);
  return tmp / "fer2013.csv";
}

TEST(Fer2013Csv, ReadsSplitsWithInlinePixels) {
  test::TempDir tmp;
  auto csv = fer2013_fixture(tmp);
  auto train = read_dataset(csv, "auto", "train");
  EXPECT_EQ(train.kind, "fer2013-csv");
  EXPECT_EQ(train.classes, fer2013_names());
  ASSERT_EQ(train.samples.size(), 3u);
  EXPECT_EQ(train.samples[0].label, 0);
  EXPECT_EQ(train.samples[2].label, 6);
  EXPECT_EQ(train.samples[1].path, csv + ":3");  // header is line 1
  EXPECT_EQ(train.samples[1].key, "fer2013:1");
  EXPECT_EQ(cv::norm(train.samples[1].image, pattern(48, 48, 1), cv::NORM_INF), 0);

  auto val = read_dataset(csv, "fer2013-csv", "val");
  ASSERT_EQ(val.samples.size(), 2u);
  EXPECT_EQ(val.samples[0].key, "fer2013:3");
  EXPECT_EQ(count_of(val, "sad"), 1);
  EXPECT_EQ(read_dataset(csv, "auto", "PrivateTest").samples.size(), 1u);  // Kaggle's name for test
  EXPECT_EQ(read_dataset(tmp.path.string(), "auto", "").samples.size(), 6u);  // the folder holding fer2013.csv

  // The cache holds exactly the inline pixels.
  auto cache = build_cache(val, gray48(), {1, false, true});
  ASSERT_EQ(cache.size(), 2);
  const cv::Mat expected_pixels = pattern(48, 48, 4);  // alive while `expect` points into it
  auto expect = torch::from_blob(expected_pixels.data, {48, 48}, torch::kUInt8);
  EXPECT_TRUE(torch::equal(cache.pixels[1][0], expect));
}

TEST(Fer2013Csv, MalformedRowsNameFileAndLine) {
  const std::string good = pixel_text(0);
  const std::vector<std::pair<std::string, std::string>> cases{
      {"3," + good, "has 2 fields"},
      {"x," + good + ",Training", "emotion 'x' is not an integer"},
      {"7," + good + ",Training", "emotion 7 out of range 0..6"},
      {"-1," + good + ",Training", "out of range"},
      {"2," + good.substr(0, good.rfind(' ')) + ",Training", "pixels has 2303 values, expected 2304"},
      {"2," + good + " 5,Training", "pixels has 2305 values"},
      {"2,256 " + good.substr(good.find(' ') + 1) + ",Training", "over 255"},
      {"2,1 a " + good.substr(4) + ",Training", "not a digit"},
      {"2," + good + ",Trainning", "Usage 'Trainning'"},
      {"2,\"" + good + ",Training", "unterminated quote"},
  };
  for (auto& [row, why] : cases) {
    test::TempDir tmp;
    write_text(tmp / "f.csv", "emotion,pixels,Usage\n0," + good + ",Training\n\n" + row + "\n");
    expect_error([&] { read_fer2013_csv(tmp / "f.csv", "train"); }, {tmp / "f.csv" + ":4:", why});
  }
  test::TempDir tmp;
  write_text(tmp / "h.csv", "label,image\n0,1 2 3\n");
  expect_error([&] { read_fer2013_csv(tmp / "h.csv"); }, {"h.csv:1", "lacks the emotion and pixels columns"});
  // Over 255: the message gives the value's position, not a value.
  write_text(tmp / "p.csv", "emotion,pixels,Usage\n2,1 300 " + good.substr(4) + ",Training\n");
  expect_error([&] { read_fer2013_csv(tmp / "p.csv"); }, {"the value at position 2 is over 255"});
  // A CSV without its header line: the message quotes the first line short.
  write_text(tmp / "n.csv", "0," + good + ",Training\n");
  try {
    read_fer2013_csv(tmp / "n.csv");
    FAIL() << "a CSV without a header was read";
  } catch (const Error& e) {
    EXPECT_LT(std::string(e.what()).size(), 400u) << e.what();
    EXPECT_NE(std::string(e.what()).find("lacks the emotion"), std::string::npos) << e.what();
  }
}

TEST(Fer2013Csv, EmptySplitIsAnError) {
  test::TempDir tmp;
  write_text(tmp / "f.csv", "emotion,pixels,Usage\n1," + pixel_text(1) + ",Training\n");
  expect_error([&] { read_fer2013_csv(tmp / "f.csv", "val"); }, {"is empty for split val"});
  write_text(tmp / "g.csv", "emotion,pixels,Usage\n");
  expect_error([&] { read_fer2013_csv(tmp / "g.csv"); }, {"is empty"});
  expect_error([&] { read_fer2013_csv(tmp / "f.csv", "holdout"); }, {"unknown split 'holdout'"});
}

// ---------------------------------------------------------------------- FER+

const char* kFerPlusHeader = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n";

// Rows: 0 happy majority; 1 dropped by FER+ (no name, NF); 2 unknown majority
// (dropped); 3 sadness plurality 4 of 10 (kept by plurality, dropped by
// FER+'s majority rule); 4 val anger; 5 test contempt.
std::string ferplus_csv() {
  return std::string(kFerPlusHeader) +
         "Training,fer0000000.png,1,8,0,0,0,0,0,0,1,0\n"
         "Training,,0,0,0,0,0,0,0,0,0,10\n"
         "Training,fer0000001.png,2,0,0,0,0,0,0,0,6,2\n"
         "Training,fer0000002.png,3,0,0,4,0,0,3,0,0,0\n"
         "PublicTest,fer0000003.png,0,0,0,0,10,0,0,0,0,0\n"
         "PrivateTest,fer0000004.png,2,0,0,0,0,0,0,7,1,0\n";
}

TEST(FerPlus, ImageFoldersPluralityVoteAndSoftLabels) {
  test::TempDir tmp;
  write_text(tmp / "fer2013new.csv", ferplus_csv());
  write_image(tmp / "FER2013Train/fer0000000.png", pattern(48, 48, 0));
  write_image(tmp / "FER2013Train/fer0000001.png", pattern(48, 48, 1));
  write_image(tmp / "FER2013Train/fer0000002.png", pattern(48, 48, 2));
  write_image(tmp / "FER2013Valid/fer0000003.png", pattern(48, 48, 3));
  write_image(tmp / "FER2013Test/fer0000004.png", pattern(48, 48, 4));

  auto train = read_dataset(tmp.path.string(), "auto", "train");
  EXPECT_EQ(train.kind, "ferplus");
  EXPECT_EQ(train.classes, (std::vector<std::string>{"neutral", "happy", "surprise", "sad", "angry", "disgust", "fear",
                                                     "contempt"}));
  ASSERT_EQ(train.samples.size(), 2u);  // row 1 has no image, row 2 is unknown
  EXPECT_EQ(train.classes[train.samples[0].label], "happy");
  EXPECT_EQ(train.samples[0].path, (tmp.path / "FER2013Train" / "fer0000000.png").string());
  EXPECT_EQ(train.samples[0].key, "FER2013Train/fer0000000.png");
  // Soft label: the 8 emotion votes (1 neutral, 8 happiness) normalised.
  ASSERT_EQ(train.samples[0].soft.size(), 8u);
  EXPECT_FLOAT_EQ(train.samples[0].soft[0], 1.f / 9);
  EXPECT_FLOAT_EQ(train.samples[0].soft[1], 8.f / 9);
  EXPECT_EQ(train.classes[train.samples[1].label], "sad");
  EXPECT_FLOAT_EQ(train.samples[1].soft[6], 3.f / 10);

  auto test_split = read_dataset(tmp / "fer2013new.csv", "ferplus", "test");
  ASSERT_EQ(test_split.samples.size(), 1u);
  EXPECT_EQ(test_split.classes[test_split.samples[0].label], "contempt");
  EXPECT_EQ(read_dataset(tmp.path.string(), "ferplus", "").samples.size(), 4u);

  // FER+'s own majority rule drops the 4-of-10 row (neutral 3, sadness 4,
  // fear 3: 4 is not more than half of 10) and keeps the happy one (its
  // single neutral and unknown votes are outliers: 8 of 8).
  auto strict = read_dataset(tmp.path.string(), "ferplus", "train", "ferplus-vote=majority");
  ASSERT_EQ(strict.samples.size(), 1u);
  EXPECT_EQ(strict.classes[strict.samples[0].label], "happy");

  // The cache carries the soft labels.
  auto cache = build_cache(train, gray48(), {1, false, true});
  ASSERT_TRUE(cache.soft.defined());
  EXPECT_NEAR(cache.soft[0][1].item<float>(), 8.f / 9, 1e-6);
  // Model classes in FER-2013 order: the soft label follows the names.
  auto seven = train.restricted_to(fer2013_names());
  EXPECT_EQ(seven.classes[seven.samples[0].label], "happy");
  EXPECT_NEAR(seven.samples[0].soft[3], 8.f / 9, 1e-6);  // happy is index 3 in FER-2013 order
}

TEST(FerPlus, JoinedRowByRowWithFer2013Csv) {
  test::TempDir tmp;
  write_text(tmp / "labels/fer2013new.csv", ferplus_csv());
  std::string fer = "emotion,pixels,Usage\n";
  const char* usage[] = {"Training", "Training", "Training", "Training", "PublicTest", "PrivateTest"};
  for (int i = 0; i < 6; ++i) fer += "0," + pixel_text(10 + i) + "," + usage[i] + "\n";
  write_text(tmp / "fer2013.csv", fer);

  auto train = read_dataset(tmp / "labels/fer2013new.csv", "ferplus", "train", "ferplus-fer2013=" + tmp / "fer2013.csv");
  ASSERT_EQ(train.samples.size(), 2u);
  EXPECT_EQ(train.samples[0].path, tmp / "fer2013.csv" + ":2");
  EXPECT_EQ(cv::norm(train.samples[0].image, pattern(48, 48, 10), cv::NORM_INF), 0);
  EXPECT_EQ(cv::norm(train.samples[1].image, pattern(48, 48, 13), cv::NORM_INF), 0);  // data row 3
  EXPECT_EQ(train.classes[train.samples[1].label], "sad");

  // fer2013.csv beside fer2013new.csv is found without the option.
  write_text(tmp / "labels/fer2013.csv", fer);
  EXPECT_EQ(read_dataset(tmp / "labels", "auto", "val").samples.size(), 1u);

  // Row-aligned or nothing: a Usage that differs, or a row count that differs.
  std::string swapped = fer;
  swapped.replace(swapped.find("PublicTest"), 10, "Training");
  write_text(tmp / "bad.csv", swapped);
  expect_error([&] { read_dataset(tmp / "labels/fer2013new.csv", "ferplus", "train", "ferplus-fer2013=" + tmp / "bad.csv"); },
               {"fer2013new.csv:6", "differs from", "bad.csv:6", "row-aligned"});
  write_text(tmp / "short.csv", fer.substr(0, fer.rfind("0,")));
  expect_error([&] { read_dataset(tmp / "labels/fer2013new.csv", "ferplus", "", "ferplus-fer2013=" + tmp / "short.csv"); },
               {"fer2013new.csv:7", "no matching row"});
}

TEST(FerPlus, MapLinksImageFilesToVotes) {
  test::TempDir tmp;
  write_image(tmp / "train/angry/a.jpg", pattern(48, 48, 1));
  write_image(tmp / "train/sad/b.jpg", pattern(48, 48, 2));
  write_image(tmp / "val/happy/c.jpg", pattern(48, 48, 3));
  write_text(tmp / "map.csv",
             "file,fer2013_class,ferplus_image,fer2013_row,usage,ferplus_votes,jpeg_vs_png_mean_abs_diff,match_status\n"
             "train/angry/a.jpg,angry,fer0000001.png,1,Training,2 0 0 1 7 0 0 0 0 0,1.31,ok\n"
             "train/sad/b.jpg,sad,,,,,8.61,no_ferplus_image\n"
             "train/angry/z.jpg,angry,fer0000002.png,2,Training,0 0 0 0 0 0 0 0 1 9,1.1,ok\n"
             "val/happy/c.jpg,happy,fer0000003.png,3,PublicTest,1 9 0 0 0 0 0 0 0 0,1.2,ok\n");
  auto train = read_dataset(tmp / "map.csv", "auto", "train");
  EXPECT_EQ(train.kind, "ferplus");
  ASSERT_EQ(train.samples.size(), 1u);  // b has no votes, z is NF
  EXPECT_EQ(train.classes[train.samples[0].label], "angry");
  EXPECT_EQ(train.samples[0].path, (tmp.path / "train/angry/a.jpg").string());
  EXPECT_FLOAT_EQ(train.samples[0].soft[4], 0.7f);
  EXPECT_EQ(read_dataset(tmp / "map.csv", "ferplus", "val").samples.size(), 1u);
  EXPECT_EQ(dataset_splits(tmp / "map.csv", "auto"), (std::vector<std::string>{"train", "val"}));
  write_text(tmp / "bad.csv", "file,usage,ferplus_votes\ntrain/angry/a.jpg,Training,1 2 3\n");
  expect_error([&] { read_dataset(tmp / "bad.csv", "ferplus", "train"); }, {"bad.csv:2", "not 10 counts"});
}

TEST(FerPlus, BadInput) {
  test::TempDir tmp;
  write_text(tmp / "fer2013new.csv", ferplus_csv());
  expect_error([&] { read_ferplus(tmp / "fer2013new.csv", "train"); }, {"no images found", "ferplus-images"});
  sfs::create_directories(tmp.path / "FER2013Train");
  write_text(tmp / "fer2013new.csv", std::string(kFerPlusHeader) + "Training,a.png,1,2,x,0,0,0,0,0,0,0\n");
  expect_error([&] { read_ferplus(tmp / "fer2013new.csv", "train"); }, {"fer2013new.csv:2", "surprise 'x'"});
  write_text(tmp / "fer2013new.csv", std::string(kFerPlusHeader) + "Training,a.png,1,2\n");
  expect_error([&] { read_ferplus(tmp / "fer2013new.csv", "train"); }, {"fer2013new.csv:2", "has 4 fields"});
  write_text(tmp / "fer2013new.csv", "Usage,Image name,neutral\n");
  expect_error([&] { read_ferplus(tmp / "fer2013new.csv", "train"); }, {"fer2013new.csv:1", "is not FER+'s"});
  write_text(tmp / "fer2013new.csv", std::string(kFerPlusHeader) + "Training,a.png,0,0,0,0,0,0,0,0,0,10\n");
  expect_error([&] { read_ferplus(tmp / "fer2013new.csv", "train"); }, {"is empty for split train"});
  expect_error([&] { read_dataset(tmp.path.string(), "ferplus", "train", "ferplus-vote=mean"); }, {"unknown FER+ vote rule"});
}

// -------------------------------------------------------------------- RAF-DB

TEST(RafDb, AlignedOrOriginalImagesSplitByPrefix) {
  test::TempDir tmp;
  const std::string basic = tmp / "basic";
  write_text(basic + "/EmoLabel/list_patition_label.txt",
             "train_00001.jpg 5\ntrain_00002.jpg 1\r\ntrain_00003.jpg 7\ntest_0001.jpg 4\ntest_0002.jpg 6\n");
  for (auto* n : {"train_00001", "train_00002", "train_00003", "test_0001", "test_0002"}) {
    write_image(basic + "/Image/aligned/" + n + "_aligned.jpg", pattern(100, 100, 1));
    write_image(basic + "/Image/original/" + std::string(n) + ".jpg", pattern(120, 90, 2));
  }
  auto train = read_dataset(basic, "auto", "train");
  EXPECT_EQ(train.kind, "rafdb");
  EXPECT_EQ(train.classes, (std::vector<std::string>{"surprise", "fear", "disgust", "happy", "sad", "angry", "neutral"}));
  ASSERT_EQ(train.samples.size(), 3u);
  EXPECT_EQ(train.classes[train.samples[0].label], "sad");       // 5
  EXPECT_EQ(train.classes[train.samples[1].label], "surprise");  // 1
  EXPECT_EQ(train.classes[train.samples[2].label], "neutral");   // 7
  EXPECT_EQ(train.samples[0].path, basic + "/Image/aligned/train_00001_aligned.jpg");
  EXPECT_EQ(train.samples[0].key, "train_00001.jpg");
  auto test_split = read_dataset(basic + "/EmoLabel/list_patition_label.txt", "auto", "test", "rafdb-images=original");
  ASSERT_EQ(test_split.samples.size(), 2u);
  EXPECT_EQ(test_split.classes[test_split.samples[0].label], "happy");  // 4
  EXPECT_EQ(test_split.samples[1].path, basic + "/Image/original/test_0002.jpg");
  auto cache = build_cache(test_split, gray48(), {1, true, true});  // strict: every file must decode
  EXPECT_EQ(cache.size(), 2);
  expect_error([&] { read_dataset(basic, "rafdb", "val"); }, {"no val split"});
  EXPECT_EQ(dataset_splits(basic, "auto"), (std::vector<std::string>{"train", "test"}));
}

TEST(RafDb, BadLinesNameFileAndLine) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"train_00002.jpg 8", "label 8 out of range 1..7"},
      {"train_00002.jpg 0", "out of range 1..7"},
      {"train_00002.jpg", "expected 'NAME LABEL'"},
      {"train_00002.jpg 3 1", "expected 'NAME LABEL'"},
      {"train_00002.jpg three", "label 'three' is not an integer"},
      {"val_00002.jpg 3", "starts with neither train_ nor test_"},
  };
  for (auto& [line, why] : cases) {
    test::TempDir tmp;
    write_text(tmp / "basic/EmoLabel/list_patition_label.txt", "train_00001.jpg 5\n" + line + "\n");
    sfs::create_directories(tmp.path / "basic/Image/aligned");
    expect_error([&] { read_dataset(tmp / "basic", "rafdb", "train"); }, {"list_patition_label.txt:2:", why});
  }
  test::TempDir tmp;
  write_text(tmp / "basic/EmoLabel/list_patition_label.txt", "train_00001.jpg 5\n");
  expect_error([&] { read_dataset(tmp / "basic", "rafdb", "train"); }, {"images not found"});
}

// ----------------------------------------------------------------- AffectNet

const char* kAffectHeader =
    "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal\n";

// Images 80x60 black with a white face box at (20,10) 30x30.
void affectnet_fixture(const test::TempDir& tmp) {
  cv::Mat img(60, 80, CV_8UC3, cv::Scalar(0, 0, 0));
  img(cv::Rect(20, 10, 30, 30)).setTo(cv::Scalar(255, 255, 255));
  const std::string images = tmp / "Manually_Annotated_Images";
  std::string train = kAffectHeader, val = kAffectHeader;
  for (int i = 0; i <= 10; ++i) {
    const std::string rel = std::to_string(i) + "/img" + std::to_string(i) + ".png";
    write_image(images + "/" + rel, img);
    train += rel + ",20,10,30,30,\"1.5;2.5;3.5\"," + std::to_string(i) + ",0.1,-0.2\n";
  }
  val += "0/img0.png,20,10,30,30,,6,0.3,0.4\n7/img7.png,20,10,30,30,,7,0.0,0.0\n";
  write_text(tmp / "training.csv", train);
  write_text(tmp / "validation.csv", val);
}

TEST(AffectNet, SevenOrEightClassesWithFaceBoxes) {
  test::TempDir tmp;
  affectnet_fixture(tmp);
  auto train = read_dataset(tmp.path.string(), "auto", "train");
  EXPECT_EQ(train.kind, "affectnet");
  EXPECT_EQ(train.classes, (std::vector<std::string>{"neutral", "happy", "sad", "surprise", "fear", "disgust", "angry"}));
  ASSERT_EQ(train.samples.size(), 7u);  // contempt, none, uncertain, no-face dropped
  for (int i = 0; i < 7; ++i) EXPECT_EQ(train.samples[i].label, i);
  EXPECT_EQ(train.samples[0].crop, cv::Rect(20, 10, 30, 30));
  EXPECT_EQ(train.samples[3].path, tmp / "Manually_Annotated_Images/3/img3.png");
  EXPECT_EQ(train.samples[3].key, "3/img3.png");

  auto eight = read_dataset(tmp.path.string(), "affectnet", "train", "affectnet-classes=8");
  ASSERT_EQ(eight.classes.size(), 8u);
  EXPECT_EQ(eight.classes[7], "contempt");
  ASSERT_EQ(eight.samples.size(), 8u);
  EXPECT_EQ(count_of(eight, "contempt"), 1);

  auto val = read_dataset(tmp / "validation.csv", "auto", "val");
  ASSERT_EQ(val.samples.size(), 1u);
  EXPECT_EQ(val.classes[val.samples[0].label], "angry");
  EXPECT_EQ(read_dataset(tmp.path.string(), "affectnet", "", "affectnet-classes=8").samples.size(), 10u);

  // The cache holds the face box only: all white.
  auto cfg = gray48();
  cfg.input_size = 24;
  auto cache = build_cache(train, cfg, {2, true, true});
  EXPECT_EQ(cache.pixels.min().item<int>(), 255);
}

TEST(AffectNet, BadRowsNameFileAndLine) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"1/a.png,1,2,3,4,,11,0,0", "expression 11 out of range 0..10"},
      {"1/a.png,1,2,3,4,,happy,0,0", "expression 'happy' is not an integer"},
      {"1/a.png,-1,2,3,4,,1,0,0", "face_x '-1'"},
      {"1/a.png,1,2,0,4,,1,0,0", "face_width '0'"},
      {"1/a.png,1,2,3,,,1,0,0", "face_height ''"},
      {"1/a.png,1,2,3,4,1,0,0", "has 8 fields"},
      {",1,2,3,4,,1,0,0", "subDirectory_filePath is empty"},
  };
  for (auto& [row, why] : cases) {
    test::TempDir tmp;
    write_text(tmp / "training.csv", std::string(kAffectHeader) + "0/b.png,1,2,3,4,,0,0,0\n" + row + "\n");
    expect_error([&] { read_dataset(tmp.path.string(), "affectnet", "train"); }, {"training.csv:3:", why});
  }
  test::TempDir tmp;
  write_text(tmp / "training.csv", std::string(kAffectHeader) + "0/b.png,1,2,3,4,,0,0,0\n");
  expect_error([&] { read_dataset(tmp.path.string(), "affectnet", "train", "affectnet-classes=6"); }, {"must be 7 or 8"});
  expect_error([&] { read_dataset(tmp.path.string(), "affectnet", "train", "affectnet-clases=8"); },
               {"unknown option 'affectnet-clases'", "affectnet-classes"});
  expect_error([&] { read_dataset(tmp.path.string(), "affectnet", "test"); }, {"test set is not public"});
  expect_error([&] { read_dataset(tmp.path.string(), "affectnet", "val"); }, {"validation.csv not found"});
}

// --------------------------------------------------------- folders, bad input

TEST(ClassFolders, SplitSubfoldersAndSynonyms) {
  test::TempDir tmp;
  write_image(tmp / "data/train/Happiness/a.png", pattern(48, 48, 1));
  write_image(tmp / "data/train/anger/b.png", pattern(48, 48, 2));
  write_image(tmp / "data/validation/happy/c.png", pattern(48, 48, 3));
  auto train = read_dataset(tmp / "data", "auto", "train");
  EXPECT_EQ(train.classes, (std::vector<std::string>{"angry", "happy"}));
  EXPECT_EQ(train.split, "train");
  EXPECT_EQ(read_dataset(tmp / "data", "folders", "val").samples[0].key, "happy/c.png");
  expect_error([&] { read_dataset(tmp / "data", "auto", ""); }, {"holds the splits train, val", "--split"});
  expect_error([&] { read_dataset(tmp / "data", "auto", "test"); }, {"has no test split", "train, val"});
  EXPECT_EQ(dataset_splits(tmp / "data", "auto"), (std::vector<std::string>{"train", "val"}));
  expect_error([&] { read_dataset(tmp / "data", "pictures", "train"); }, {"unknown dataset kind 'pictures'", "affectnet"});
  // Another kind's option is ignored (train and val may share one options
  // string); a key no kind knows is an error.
  EXPECT_EQ(read_dataset(tmp / "data", "folders", "train", "rafdb-images=aligned").samples.size(), 2u);
  expect_error([&] { read_dataset(tmp / "data", "folders", "train", "rafdb-image=aligned"); },
               {"unknown option 'rafdb-image'", "known: none"});
}

TEST(BadInput, UnreadableImagesSkippedWithCountOrStrictError) {
  test::TempDir tmp;
  write_image(tmp / "ds/happy/good.jpg", pattern(48, 48, 1));
  write_image(tmp / "ds/sad/good.png", pattern(48, 48, 2));
  const std::string jpg = adcorre::fs::read_file(tmp / "ds/happy/good.jpg"), png = adcorre::fs::read_file(tmp / "ds/sad/good.png");
  write_text(tmp / "ds/happy/truncated.jpg", jpg.substr(0, jpg.size() / 2));
  write_text(tmp / "ds/sad/truncated.png", png.substr(0, png.size() / 2));
  write_text(tmp / "ds/sad/notes.jpg", "this is not an image\n");
  write_text(tmp / "ds/sad/empty.png", "");
  auto ds = read_dataset(tmp / "ds");
  ASSERT_EQ(ds.samples.size(), 6u);
  auto cache = build_cache(ds, gray48(), {1, false, true});
  EXPECT_EQ(cache.size(), 2);
  ASSERT_EQ(cache.skipped.size(), 4u);
  std::set<std::string> names;
  for (auto& s : cache.skipped)
    for (auto* n : {"truncated.jpg", "truncated.png", "notes.jpg", "empty.png"})
      if (s.find(n) != std::string::npos) names.insert(n);
  EXPECT_EQ(names.size(), 4u);
  EXPECT_EQ(cache.keys, (std::vector<std::string>{"happy/good.jpg", "sad/good.png"}));
  expect_error([&] { build_cache(ds, gray48(), {1, true, true}); }, {"strict", "happy/truncated.jpg", "truncated JPEG"});

  // Nothing readable at all: an error, not an empty cache.
  Dataset bad = ds;
  bad.samples.erase(std::remove_if(bad.samples.begin(), bad.samples.end(),
                                   [](const Sample& s) { return s.key.find("good") != std::string::npos; }),
                    bad.samples.end());
  expect_error([&] { build_cache(bad, gray48(), {1, false, true}); }, {"no readable image"});
}

TEST(BadInput, TruncatedJpegWithThumbnailOrTrailingBytes) {
  // A JPEG whose APP1 segment holds a whole JPEG (like an EXIF thumbnail):
  // the thumbnail's end marker must not hide a cut in the main image.
  test::TempDir tmp;
  write_image(tmp / "t.jpg", pattern(64, 64, 9));
  const std::string jpg = adcorre::fs::read_file(tmp / "t.jpg");
  const std::string thumb = jpg;
  std::string app1 = "\xFF\xE1";
  app1 += static_cast<char>((thumb.size() + 2) >> 8);
  app1 += static_cast<char>((thumb.size() + 2) & 0xFF);
  const std::string whole = jpg.substr(0, 2) + app1 + thumb + jpg.substr(2);
  write_text(tmp / "ds/happy/whole.jpg", whole);
  write_text(tmp / "ds/happy/trailing.jpg", jpg + std::string(100, '\0') + "junk");
  write_text(tmp / "ds/sad/cut.jpg", whole.substr(0, whole.size() - jpg.size() / 3));
  auto cache = build_cache(read_dataset(tmp / "ds"), gray48(), {1, false, true});
  EXPECT_EQ(cache.keys, (std::vector<std::string>{"happy/trailing.jpg", "happy/whole.jpg"}));
  ASSERT_EQ(cache.skipped.size(), 1u);
  EXPECT_NE(cache.skipped[0].find("cut.jpg"), std::string::npos);
  EXPECT_NE(cache.skipped[0].find("truncated JPEG"), std::string::npos) << cache.skipped[0];
}

TEST(BadInput, UnknownClassFolderListsKnownNames) {
  test::TempDir tmp;
  write_image(tmp / "ds/happy/a.png", pattern(48, 48, 1));
  write_image(tmp / "ds/bored/b.png", pattern(48, 48, 2));
  expect_error([&] { read_dataset(tmp / "ds"); }, {"unknown class folder 'bored'", "known names: angry, disgust, fear"});
}

TEST(BadInput, AnEmptyClassFolderIsAnErrorNamingIt) {
  test::TempDir tmp;
  write_image(tmp / "ds/happy/a.png", pattern(48, 48, 1));
  sfs::create_directories(tmp.path / "ds/sad");
  write_text(tmp / "ds/sad/notes.txt", "no images");
  expect_error([&] { read_dataset(tmp / "ds"); }, {"class folder", "sad", "has no images"});
}

TEST(BadInput, EmptyDatasetIsAnError) {
  test::TempDir tmp;
  sfs::create_directories(tmp.path / "ds/happy");
  write_text(tmp / "ds/happy/readme.txt", "no images here");
  expect_error([&] { read_dataset(tmp / "ds"); }, {"has no images"});
  sfs::create_directories(tmp.path / "none");
  expect_error([&] { read_dataset(tmp / "none"); }, {"no class folders"});
  expect_error([&] { read_dataset(tmp / "missing"); }, {"dataset not found"});
  Dataset empty;
  expect_error([&] { build_cache(empty, gray48()); }, {"is empty"});
}

// ---------------------------------------------------------------- data-check

TEST(DataCheck, CountsDuplicatesOddSizesUnreadable) {
  test::TempDir tmp;
  write_image(tmp / "d/train/happy/a.png", pattern(48, 48, 1));
  write_image(tmp / "d/train/happy/b.png", pattern(48, 48, 2));
  write_image(tmp / "d/train/sad/c.png", pattern(48, 48, 3));
  write_image(tmp / "d/train/sad/big.png", pattern(64, 64, 4));
  write_text(tmp / "d/train/sad/broken.png", "not a png");
  sfs::create_directories(tmp.path / "d/val/sad");
  sfs::copy_file(tmp / "d/train/happy/a.png", tmp / "d/val/sad/copy.png");  // across splits, other label
  write_image(tmp / "d/val/happy/d.png", pattern(48, 48, 5));

  DataCheckOptions o;
  o.threads = 2;
  auto rep = check_dataset(tmp / "d", o);
  EXPECT_EQ(rep.kind, "folders");
  ASSERT_EQ(rep.splits.size(), 2u);
  EXPECT_EQ(rep.splits[0].split, "train");
  EXPECT_EQ(rep.splits[0].total, 5);
  EXPECT_EQ(rep.splits[0].counts, (std::vector<int64_t>{2, 3}));  // happy, sad
  EXPECT_EQ(rep.splits[1].total, 2);
  EXPECT_EQ(rep.images, 7);
  EXPECT_EQ(rep.unreadable, 1);
  EXPECT_EQ(rep.splits[0].unreadable, 1);
  ASSERT_EQ(rep.unreadable_examples.size(), 1u);
  EXPECT_NE(rep.unreadable_examples[0].find("train/sad/broken.png"), std::string::npos);
  EXPECT_EQ(rep.common_size, "48x48 gray");
  EXPECT_EQ(rep.odd_sizes, 1);
  EXPECT_NE(rep.odd_size_examples[0].find("big.png: 64x64"), std::string::npos);
  EXPECT_EQ(rep.duplicate_groups, 1);
  EXPECT_EQ(rep.duplicate_images, 2);
  EXPECT_EQ(rep.duplicate_groups_across_splits, 1);
  EXPECT_EQ(rep.duplicate_groups_conflicting, 1);
  EXPECT_FALSE(rep.clean());

  auto j = rep.to_json();
  EXPECT_EQ(j["splits"][0]["counts"]["sad"], 3);
  EXPECT_EQ(j["problems"]["duplicates"]["groups"], 1);
  auto table = rep.to_table();
  EXPECT_NE(table.find("unreadable images: 1"), std::string::npos) << table;

  // One split only.
  o.split = "val";
  auto val = check_dataset(tmp / "d", o);
  ASSERT_EQ(val.splits.size(), 1u);
  EXPECT_EQ(val.duplicate_groups, 0);
  EXPECT_TRUE(val.clean());
}

TEST(DataCheck, InlinePixelsAndFaceBoxes) {
  test::TempDir tmp;
  std::string csv = "emotion,pixels,Usage\n";
  csv += "1," + pixel_text(7) + ",Training\n2," + pixel_text(7) + ",PublicTest\n3," + pixel_text(8) + ",Training\n";
  write_text(tmp / "fer2013.csv", csv);
  auto rep = check_dataset(tmp / "fer2013.csv");
  EXPECT_EQ(rep.kind, "fer2013-csv");
  ASSERT_EQ(rep.splits.size(), 2u);
  EXPECT_EQ(rep.duplicate_groups, 1);
  EXPECT_EQ(rep.duplicate_groups_across_splits, 1);

  test::TempDir an;
  write_image(an / "Manually_Annotated_Images/1/a.png", pattern(40, 40, 1));
  write_text(an / "training.csv", std::string(kAffectHeader) + "1/a.png,30,30,20,20,,1,0,0\n1/a.png,0,0,40,40,,2,0,0\n");
  auto arep = check_dataset(an.path.string());
  EXPECT_EQ(arep.boxes_outside, 1);
  EXPECT_NE(arep.box_examples[0].find("train/1/a.png"), std::string::npos);
}

TEST(DataCheck, CommandLine) {
  // Three runs only: each CLI start loads LibTorch (~1 s of CPU).
  test::TempDir tmp;
  write_image(tmp / "d/train/happy/a.png", pattern(48, 48, 1));
  write_image(tmp / "d/train/neutral/b.png", pattern(48, 48, 2));
  write_image(tmp / "d/test/happy/c.png", pattern(48, 48, 3));
  write_text(tmp / "d/test/happy/x.png", "garbage");
  std::string out;
  ASSERT_EQ(test::run_command(test::adcorre_binary() + " -q data-check " + tmp / "d" + " --json --fail-on-problems", &out), 3)
      << out;
  auto j = nlohmann::json::parse(out);
  ASSERT_EQ(j["splits"].size(), 2u);
  EXPECT_EQ(j["splits"][1]["split"], "test");
  EXPECT_EQ(j["splits"][0]["counts"]["neutral"], 1);
  EXPECT_EQ(j["problems"]["unreadable"]["count"], 1);
  ASSERT_EQ(test::run_command(test::adcorre_binary() + " -q data-check " + tmp / "d" + " --split train", &out), 0);
  EXPECT_NE(out.find("happy"), std::string::npos) << out;
  EXPECT_NE(out.find("unreadable images: 0"), std::string::npos) << out;
  EXPECT_EQ(out.find("test "), std::string::npos) << out;
  EXPECT_EQ(test::run_command(test::adcorre_binary() + " -q data-check " + tmp / "nothing", &out, true), 1);
  EXPECT_NE(out.find("error: dataset not found"), std::string::npos) << out;
}

// ------------------------------------------------------------ streaming mode

TEST(Stream, SameBatchesAsTheCacheForAnyThreadCount) {
  test::TempDir tmp;
  for (int i = 0; i < 23; ++i)
    write_image(tmp / ("ds/" + std::string(i % 3 ? "happy" : "sad") + "/" + std::to_string(i) + ".png"), pattern(60, 50, i));
  auto ds = read_dataset(tmp / "ds");
  auto cfg = gray48();
  auto cache = build_cache(ds, cfg, {2, true, true});
  EpochPlan plan;
  plan.seed = 5;
  plan.epoch = 2;
  auto order = epoch_indices(ds, plan);
  EXPECT_EQ(order, epoch_indices(cache, plan));
  for (int threads : {1, 3}) {
    StreamOptions so;
    so.batch_size = 5;
    so.threads = threads;
    so.prefetch = 2;
    BatchStream stream(ds, cfg, order, so);
    EXPECT_EQ(stream.num_batches(), 5);
    Batch b;
    int64_t seen = 0;
    while (stream.next(b)) {
      auto idx = torch::tensor(std::vector<int64_t>(order.begin() + seen, order.begin() + seen + b.size()));
      EXPECT_TRUE(torch::equal(b.pixels, cache.pixels.index_select(0, idx))) << "batch at " << seen;
      EXPECT_TRUE(torch::equal(b.labels, cache.labels.index_select(0, idx)));
      seen += b.size();
    }
    EXPECT_EQ(seen, 23);
  }
  StreamOptions last;
  last.batch_size = 5;
  last.drop_last = true;
  EXPECT_EQ(BatchStream(ds, cfg, order, last).num_batches(), 4);
}

TEST(Stream, UnreadableImagesLeftOutOrStrictError) {
  test::TempDir tmp;
  for (int i = 0; i < 6; ++i) write_image(tmp / ("ds/happy/" + std::to_string(i) + ".png"), pattern(48, 48, i));
  write_text(tmp / "ds/happy/3.png", "broken");
  auto ds = read_dataset(tmp / "ds");
  std::vector<int64_t> order{0, 1, 2, 3, 4, 5};
  StreamOptions so;
  so.batch_size = 4;
  so.threads = 2;
  BatchStream stream(ds, gray48(), order, so);
  Batch b;
  ASSERT_TRUE(stream.next(b));
  EXPECT_EQ(b.indices, (std::vector<int64_t>{0, 1, 2}));
  ASSERT_TRUE(stream.next(b));
  EXPECT_EQ(b.size(), 2);
  EXPECT_FALSE(stream.next(b));
  ASSERT_EQ(stream.skipped().size(), 1u);
  EXPECT_NE(stream.skipped()[0].find("3.png"), std::string::npos);

  so.strict = true;
  BatchStream strict(ds, gray48(), order, so);
  expect_error([&] {
    while (strict.next(b)) {
    }
  }, {"strict", "3.png"});
  expect_error([&] { BatchStream bad(ds, gray48(), {0, 9}, so); }, {"sample index 9"});
}

// ----------------------------------------------------- the shared FER-2013

TEST(SharedFer2013, CountsEqualTheReadme) {
  const std::string root = test::shared_dir() + "/data/fer2013";
  if (test::shared_dir().empty() || !sfs::is_directory(root)) GTEST_SKIP() << "no ../shared/data/fer2013";
  const std::vector<std::string> names{"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"};
  const std::vector<int64_t> train_counts{3995, 436, 4097, 7215, 4830, 3171, 4965}, val_counts{467, 56, 496, 895, 653, 415, 607};
  auto train = read_dataset(root, "auto", "train"), val = read_dataset(root, "auto", "val");
  EXPECT_EQ(train.classes, names);
  EXPECT_EQ(train.class_counts(), train_counts);
  EXPECT_EQ(train.samples.size(), 28709u);
  EXPECT_EQ(val.class_counts(), val_counts);
  EXPECT_EQ(val.samples.size(), 3589u);

  // data-check on the same folder: the same counts, nothing unreadable, all
  // 48x48 gray, and exactly the README's byte-identical duplicate groups.
  std::string out;
  ASSERT_EQ(test::run_command(test::adcorre_binary() + " -q --threads 2 data-check " + root + " --json", &out), 0);
  auto j = nlohmann::json::parse(out);
  ASSERT_EQ(j["splits"].size(), 2u);
  for (size_t c = 0; c < names.size(); ++c) {
    EXPECT_EQ(j["splits"][0]["counts"][names[c]], train_counts[c]) << names[c];
    EXPECT_EQ(j["splits"][1]["counts"][names[c]], val_counts[c]) << names[c];
  }
  EXPECT_EQ(j["problems"]["unreadable"]["count"], 0);
  EXPECT_EQ(j["problems"]["odd_sizes"]["count"], 0);
  EXPECT_EQ(j["problems"]["odd_sizes"]["common_size"], "48x48 gray");
  // duplicates.csv: group_id,file,fer2013_class (file = split/class/name).
  std::ifstream dup(root + "/duplicates.csv");
  std::map<std::string, std::set<std::string>> group_splits, group_classes;
  int64_t images = 0;
  std::string line;
  std::getline(dup, line);
  while (std::getline(dup, line)) {
    if (line.empty()) continue;
    auto c1 = line.find(','), c2 = line.rfind(',');
    auto file = line.substr(c1 + 1, c2 - c1 - 1);
    group_splits[line.substr(0, c1)].insert(file.substr(0, file.find('/')));
    group_classes[line.substr(0, c1)].insert(line.substr(c2 + 1));
    ++images;
  }
  if (!group_splits.empty()) {
    size_t across = 0, conflicting = 0;
    for (auto& [g, s] : group_splits) across += s.size() > 1;
    for (auto& [g, c] : group_classes) conflicting += c.size() > 1;
    auto& d = j["problems"]["duplicates"];
    EXPECT_EQ(d["groups"], group_splits.size());
    EXPECT_EQ(d["images"], images);
    EXPECT_EQ(d["groups_across_splits"], across);
    EXPECT_EQ(d["groups_with_conflicting_labels"], conflicting);
  }
}

TEST(SharedFer2013, FerPlusLabelsThroughTheMap) {
  const std::string map = test::shared_dir() + "/data/fer2013/fer2013_to_ferplus.csv";
  if (test::shared_dir().empty() || !sfs::is_regular_file(map)) GTEST_SKIP() << "no fer2013_to_ferplus.csv";
  auto train = read_dataset(map, "auto", "train");
  EXPECT_EQ(train.kind, "ferplus");
  // 28,709 images, 151 without FER+ votes; the rest minus unknown/NF majorities.
  EXPECT_GT(train.samples.size(), 27000u);
  EXPECT_LT(train.samples.size(), 28709u - 151u);
  for (auto& s : train.samples) {
    ASSERT_EQ(s.key.rfind("train/", 0), 0u) << s.key;
    if (s.key == "train/angry/Training_10118481.jpg") {  // votes 2 0 0 1 7 0 0 0 0 0
      EXPECT_EQ(train.classes[s.label], "angry");
      EXPECT_NEAR(s.soft[4], 0.7, 1e-6);
    }
  }
  EXPECT_TRUE(sfs::is_regular_file(train.samples[0].path)) << train.samples[0].path;
}

}  // namespace
