// Packed data (adcorre pack, data/packed.h): the packed tensors are exactly
// the decoded images; training on packed data is the same run as training on
// the images; resizing/channel fitting; bad files name the field at fault.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "adcorre/data/dataset.h"
#include "adcorre/data/loader.h"
#include "adcorre/data/packed.h"
#include "adcorre/train/trainer.h"
#include "adcorre/util/error.h"
#include "adcorre/util/log.h"
#include "synthetic_faces.h"
#include "test_util.h"

using namespace adcorre;
namespace sfs = std::filesystem;

namespace {

const std::vector<std::string> kClasses{"angry", "happy", "sad"};

std::string last_metrics(const std::string& run_dir) {
  std::ifstream in(sfs::path(run_dir) / "metrics.jsonl");
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  return last;
}

}  // namespace

TEST(Packed, PackCommandRoundTripsTheDecodedImages) {
  test::TempDir tmp;
  test::write_synthetic_folders(tmp / "train", kClasses, 12, 1);
  std::string out;
  ASSERT_EQ(test::run_command(test::adcorre_binary() + " -q pack --data " + tmp / "train" + " -o " + tmp / "t.pack", &out, true), 0) << out;
  EXPECT_NE(out.find("packed 36 images"), std::string::npos) << out;
  auto packed = data::read_packed(tmp / "t.pack");

  models::ModelConfig cfg;
  auto ds = data::read_class_folders(tmp / "train");
  cfg.class_names = ds.classes;
  auto decoded = data::build_cache(ds, cfg, {1, true, true});
  ASSERT_EQ(packed.pixels.sizes(), decoded.pixels.sizes());
  EXPECT_TRUE(torch::equal(packed.pixels, decoded.pixels.contiguous()));
  EXPECT_TRUE(torch::equal(packed.labels, decoded.labels));
  EXPECT_EQ(packed.keys, decoded.keys);
  EXPECT_EQ(packed.classes, decoded.classes);
  EXPECT_FALSE(packed.soft.defined());
}

TEST(Packed, TrainingOnPackedDataIsTheSameRunAsOnTheImages) {
  log::set_level(log::Level::quiet);
  test::TempDir tmp;
  test::write_synthetic_folders(tmp / "train", kClasses, 32, 1);
  test::write_synthetic_folders(tmp / "val", kClasses, 10, 2);
  for (std::string split : {"train", "val"})
    ASSERT_EQ(test::run_command(test::adcorre_binary() + " -q pack --data " + tmp / split + " -o " + tmp / (split + ".pack")), 0);
  auto run = [&](const std::string& train_data, const std::string& val_data, const std::string& out) {
    train::TrainConfig c;
    c.train_data = train_data;
    c.val_data = val_data;
    c.preset = "fer-tiny";
    c.epochs = 1;
    c.batch_size = 16;
    c.augment = "light";
    c.threads = 1;
    c.seed = 3;
    c.out = tmp / out;
    return train::train(c);
  };
  auto from_images = run(tmp / "train", tmp / "val", "images");
  auto from_packed = run(tmp / "train.pack", tmp / "val.pack", "packed");
  EXPECT_EQ(from_packed.epochs_done, 1);
  EXPECT_TRUE(sfs::exists(tmp / "packed/best.pt"));
  // Same pixels, same seed, one thread: the same losses and accuracies.
  auto a = nlohmann::json::parse(last_metrics(tmp / "images")), b = nlohmann::json::parse(last_metrics(tmp / "packed"));
  for (const char* k : {"train_loss", "train_accuracy", "val_accuracy"}) EXPECT_EQ(a[k], b[k]) << k;
}

TEST(Packed, FitResizesReplicatesChannelsAndMatchesClassesByName) {
  data::ImageCache c;
  c.pixels = torch::full({4, 1, 48, 48}, 100, torch::kUInt8);
  c.pixels[1].fill_(200);
  c.labels = torch::tensor(std::vector<int64_t>{0, 1, 2, 1});
  c.keys = {"a", "b", "c", "d"};
  c.classes = {"happy", "sad", "contempt"};
  models::ModelConfig cfg;
  cfg.input_size = 64;
  cfg.in_channels = 3;
  cfg.class_names = {"angry", "sad", "happy"};
  log::set_level(log::Level::quiet);
  auto f = data::fit_packed(c, cfg, "x.pack");
  ASSERT_EQ(f.pixels.sizes(), (std::vector<int64_t>{3, 3, 64, 64}));  // "contempt" left out
  EXPECT_EQ(f.keys, (std::vector<std::string>{"a", "b", "d"}));
  EXPECT_TRUE(torch::equal(f.labels, torch::tensor(std::vector<int64_t>{2, 1, 1})));
  EXPECT_EQ(f.pixels[0].min().item<int>(), 100);  // a flat image stays flat when resized
  EXPECT_EQ(f.pixels[1].max().item<int>(), 200);
  cfg.in_channels = 1;
  c.pixels = torch::zeros({4, 3, 48, 48}, torch::kUInt8);
  EXPECT_THROW(data::fit_packed(c, cfg, "x.pack"), Error);
}

TEST(Packed, BadFilesNameTheFieldAtFault) {
  test::TempDir tmp;
  data::ImageCache c;
  c.pixels = torch::zeros({2, 1, 8, 8}, torch::kUInt8);
  c.labels = torch::tensor(std::vector<int64_t>{0, 5});
  c.keys = {"a", "b"};
  c.classes = {"happy", "sad"};
  data::write_packed(tmp / "bad.pack", c, "test");
  try {
    data::read_packed(tmp / "bad.pack");
    FAIL() << "a label outside the classes was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("label"), std::string::npos) << e.what();
  }
  std::ofstream(tmp / "junk.pack") << "not an archive";
  try {
    data::read_packed(tmp / "junk.pack");
    FAIL() << "junk accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("junk.pack"), std::string::npos) << e.what();
  }
  EXPECT_THROW(data::write_packed(tmp / "empty.pack", data::ImageCache{}, "test"), Error);
}
