// Pictures and embedding maps: training curves and confusion heatmap PNGs,
// the trainer writing them into the run folder, PCA and t-SNE on data with a
// known answer, model embeddings and the `adcorre embed` / `plot` commands.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include "adcorre/data/dataset.h"
#include "adcorre/data/loader.h"
#include "adcorre/eval/embedding_map.h"
#include "adcorre/eval/plots.h"
#include "adcorre/models/model_file.h"
#include "adcorre/train/trainer.h"
#include "adcorre/util/error.h"
#include "synthetic_faces.h"
#include "test_util.h"

using namespace adcorre;
namespace sfs = std::filesystem;

namespace {

// Pixels of `img` (inside `area`) exactly equal to `color`.
int count_color(const cv::Mat& img, const cv::Scalar& color, cv::Rect area = {}) {
  cv::Mat roi = area.area() > 0 ? img(area) : img, mask;
  cv::inRange(roi, color, color, mask);
  return cv::countNonZero(mask);
}

void write_metrics(const std::string& path, int epochs) {
  std::ofstream out(path);
  for (int e = 1; e <= epochs; ++e) {
    // Loss terms kept apart (>= 0.5 on a 0..3 axis) so no series hides another.
    nlohmann::json r = {{"epoch", e},        {"train_loss", 12.0 - 0.5 * e}, {"train_ce", 2.4 - 0.05 * e},
                        {"train_fd", 1.7},    {"train_md", 1.1},              {"train_ed", 0.5},
                        {"train_accuracy", 0.3 + 0.1 * e}, {"val_accuracy", 0.2 + 0.1 * e}};
    if (e == epochs) r["val_confusion"] = {{1.0, 0.0, 0.0}, {0.0, 1.0, 0.0}, {0.0, 0.0, 1.0}};
    out << r.dump() << "\n";
  }
}

// n points per class around well-separated centres in `dims` dimensions.
at::Tensor gaussian_clusters(int classes, int n, int dims, std::vector<int64_t>& labels, uint64_t seed) {
  torch::manual_seed(seed);
  auto centres = torch::randn({classes, dims}, torch::kDouble) * 10;
  std::vector<at::Tensor> parts;
  for (int c = 0; c < classes; ++c) {
    parts.push_back(centres[c] + torch::randn({n, dims}, torch::kDouble));
    for (int i = 0; i < n; ++i) labels.push_back(c);
  }
  return torch::cat(parts);
}

}  // namespace

TEST(Plots, TrainingCurvesPngHasBothPanelsAndTheirSeries) {
  test::TempDir tmp;
  write_metrics(tmp / "metrics.jsonl", 6);
  eval::write_training_curves(tmp / "metrics.jsonl", tmp / "curves.png");
  ASSERT_GT(sfs::file_size(tmp / "curves.png"), 1000u);
  cv::Mat img = cv::imread(tmp / "curves.png", cv::IMREAD_COLOR);
  ASSERT_FALSE(img.empty());
  EXPECT_EQ(img.cols, 1200);
  EXPECT_EQ(img.rows, 480);
  const cv::Rect total(0, 0, 400, 480), terms(400, 0, 400, 480), acc(800, 0, 400, 480);
  EXPECT_GT(count_color(img, eval::class_color(0), total), 50);
  for (int c = 1; c < 5; ++c) EXPECT_GT(count_color(img, eval::class_color(c), terms), 50) << "loss term " << c;
  EXPECT_EQ(count_color(img, eval::class_color(0), terms), 0);  // the total is not on the terms panel
  EXPECT_GT(count_color(img, eval::class_color(0), acc), 50);
  EXPECT_GT(count_color(img, eval::class_color(1), acc), 50);
  EXPECT_EQ(count_color(img, eval::class_color(4), acc), 0);  // no loss term on the accuracy panel
}

TEST(Plots, MetricsJsonlErrorsNameTheLine) {
  test::TempDir tmp;
  std::ofstream(tmp / "m.jsonl") << "{\"epoch\": 1}\nnot json\n";
  try {
    eval::read_metrics_jsonl(tmp / "m.jsonl");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("m.jsonl:2"), std::string::npos) << e.what();
  }
}

TEST(Plots, ConfusionHeatmapPutsFullCellsOnTheDiagonal) {
  const std::vector<std::string> classes{"angry", "happy", "sad"};
  std::vector<std::vector<double>> identity{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  cv::Mat img = eval::draw_confusion(classes, identity, "t", 640);
  ASSERT_EQ(img.size(), cv::Size(640, 640));
  const cv::Scalar one = eval::heat_color(1.0), zero = eval::heat_color(0.0);
  EXPECT_NE(one, zero);
  // Each 1.0 cell is one solid dark region; their centres lie on the diagonal.
  cv::Mat mask, labels, stats, centroids;
  cv::inRange(img, one, one, mask);
  const int n = cv::connectedComponentsWithStats(mask, labels, stats, centroids);
  std::vector<cv::Point2d> cells;
  for (int i = 1; i < n; ++i)
    if (stats.at<int>(i, cv::CC_STAT_AREA) > 1000) cells.emplace_back(centroids.at<double>(i, 0), centroids.at<double>(i, 1));
  ASSERT_EQ(cells.size(), 3u);
  std::sort(cells.begin(), cells.end(), [](auto& a, auto& b) { return a.x < b.x; });
  for (int i = 1; i < 3; ++i) {
    EXPECT_GT(cells[i].y, cells[i - 1].y + 50);
    EXPECT_NEAR(cells[i].x - cells[i - 1].x, cells[i].y - cells[i - 1].y, 3.0);
  }
  // The 0.0 cells are the light colour, and there are twice as many of them.
  EXPECT_GT(count_color(img, zero), count_color(img, one));
  // An all-zero matrix has no dark cell at all.
  cv::Mat empty = eval::draw_confusion(classes, {{0, 0, 0}, {0, 0, 0}, {0, 0, 0}});
  EXPECT_EQ(count_color(empty, one), 0);
  EXPECT_THROW(eval::draw_confusion(classes, {{1, 0}, {0, 1}}), Error);
}

TEST(Plots, ConfusionPngFromMetrics) {
  test::TempDir tmp;
  auto m = eval::compute_metrics({"a", "b"}, {0, 0, 1, 1}, {0, 1, 1, 1});
  eval::write_confusion_png(m, tmp / "c.png");
  cv::Mat img = cv::imread(tmp / "c.png", cv::IMREAD_COLOR);
  ASSERT_EQ(img.size(), cv::Size(640, 640));
  EXPECT_GT(count_color(img, eval::heat_color(1.0)), 1000);  // b -> b
  EXPECT_GT(count_color(img, eval::heat_color(0.5)), 1000);  // a -> a and a -> b
}

TEST(Plots, RunPicturesFromAMetricsFile) {
  test::TempDir tmp;
  write_metrics(tmp / "metrics.jsonl", 3);
  auto files = eval::draw_run_pictures(tmp.path.string(), {"a", "b", "c"});
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(cv::imread(tmp / "curves.png").size(), cv::Size(1200, 480));
  EXPECT_EQ(cv::imread(tmp / "confusion.png").size(), cv::Size(640, 640));
  EXPECT_THROW(eval::draw_run_pictures((tmp / "nowhere")), Error);
}

TEST(Plots, ScatterColoursEachClassAndNamesItInTheLegend) {
  std::vector<std::array<double, 2>> pts;
  std::vector<int> labels;
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < 20; ++i) {
      pts.push_back({c * 10.0 + i * 0.1, c * 5.0});
      labels.push_back(c);
    }
  cv::Mat img = eval::draw_scatter(pts, labels, {"angry", "happy", "sad"}, "title", 800);
  ASSERT_EQ(img.size(), cv::Size(800, 800));
  for (int c = 0; c < 3; ++c) EXPECT_GT(count_color(img, eval::class_color(c)), 100) << c;
  EXPECT_EQ(count_color(img, eval::class_color(3)), 0);
  labels[0] = 7;
  EXPECT_THROW(eval::draw_scatter(pts, labels, {"angry", "happy", "sad"}), Error);
}

TEST(EmbeddingMap, PcaOrdersComponentsByVariance) {
  torch::manual_seed(3);
  // Stds 5, 2, 0.5 along the axes of a random rotation of R^3.
  auto z = torch::randn({2000, 3}, torch::kDouble) * torch::tensor({5.0, 2.0, 0.5}, torch::kDouble);
  auto [q, r] = at::linalg_qr(torch::randn({3, 3}, torch::kDouble));
  auto x = torch::matmul(z, q.t()) + 7.0;
  at::Tensor explained;
  auto y = eval::pca(x, 3, &explained);
  ASSERT_EQ(y.sizes(), (std::vector<int64_t>{2000, 3}));
  EXPECT_NEAR(explained[0].item<double>(), 25.0, 2.5);
  EXPECT_NEAR(explained[1].item<double>(), 4.0, 0.4);
  EXPECT_NEAR(explained[2].item<double>(), 0.25, 0.03);
  // Projections are centred, uncorrelated and carry the explained variances.
  auto cov = torch::matmul(y.t(), y) / 1999;
  EXPECT_LT((cov - torch::diag(explained)).abs().max().item<double>(), 1e-8);
  EXPECT_LT(y.mean(0).abs().max().item<double>(), 1e-9);
  EXPECT_THROW(eval::pca(x, 4), Error);
}

TEST(EmbeddingMap, TsneKeepsSeparatedClustersApart) {
  std::vector<int64_t> labels;
  auto x = gaussian_clusters(3, 60, 20, labels, 11);
  eval::TsneOptions o;
  o.iterations = 500;
  auto y = eval::tsne(x, o);
  ASSERT_EQ(y.sizes(), (std::vector<int64_t>{180, 2}));
  ASSERT_TRUE(torch::isfinite(y).all().item<bool>());
  EXPECT_GT(eval::nearest_neighbour_agreement(y, labels), 0.9);
  // Between-cluster distances dominate within-cluster spread in the map.
  std::vector<at::Tensor> centres;
  double spread = 0;
  for (int c = 0; c < 3; ++c) {
    auto part = y.slice(0, c * 60, (c + 1) * 60);
    centres.push_back(part.mean(0));
    spread = std::max(spread, (part - part.mean(0)).norm(2, 1).mean().item<double>());
  }
  for (int a = 0; a < 3; ++a)
    for (int b = a + 1; b < 3; ++b) EXPECT_GT((centres[a] - centres[b]).norm().item<double>(), 2 * spread);
  // Random labels on the same map agree far less: the check can fail.
  std::vector<int64_t> shuffled(labels.size());
  for (size_t i = 0; i < labels.size(); ++i) shuffled[i] = (i * 7) % 3;
  EXPECT_LT(eval::nearest_neighbour_agreement(y, shuffled), 0.6);
}

TEST(EmbeddingMap, ModelEmbeddingsCsvAndUnitNorm) {
  test::TempDir tmp;
  const std::vector<std::string> classes{"angry", "happy", "sad"};
  test::write_synthetic_folders(tmp / "data", classes, 5, 4);
  auto cfg = models::preset("fer-tiny");
  cfg.class_names = classes;
  auto net = models::create_model(cfg);
  auto cache = data::build_cache(data::read_dataset(tmp / "data"), cfg, {1, true, true});
  auto e = eval::compute_embeddings(*net, cfg, cache, false, 4);
  ASSERT_EQ(e.sizes(), (std::vector<int64_t>{15, cfg.k * cfg.d}));
  auto norms = e.view({15, cfg.k, cfg.d}).norm(2, 2);
  EXPECT_LT((norms - 1).abs().max().item<double>(), 1e-4);
  auto f = eval::compute_embeddings(*net, cfg, cache, true, 4);
  EXPECT_EQ(f.size(0), 15);
  EXPECT_TRUE(net->is_training());  // the training mode is restored
  std::vector<int64_t> labels(cache.labels.data_ptr<int64_t>(), cache.labels.data_ptr<int64_t>() + 15);
  eval::write_embeddings_csv(tmp / "e.csv", e, cache.keys, labels, cache.classes);
  std::ifstream in(tmp / "e.csv");
  std::string header, row;
  std::getline(in, header);
  EXPECT_EQ(header.rfind("key,label,v0,v1,", 0), 0u);
  int rows = 0;
  while (std::getline(in, row)) {
    ++rows;
    EXPECT_EQ(std::count(row.begin(), row.end(), ','), 1 + cfg.k * cfg.d) << row;
  }
  EXPECT_EQ(rows, 15);
}

TEST(EmbeddingMap, EmbedAndPlotCommands) {
  test::TempDir tmp;
  const std::vector<std::string> classes{"angry", "happy", "sad"};
  test::write_synthetic_folders(tmp / "data", classes, 8, 6);
  auto cfg = models::preset("fer-tiny");
  cfg.class_names = {"angry", "happy", "sad", "neutral"};  // a class the data lacks is fine
  auto net = models::create_model(cfg);
  models::save_model(tmp / "m.pt", cfg, *net);
  const std::string bin = test::adcorre_binary();
  std::string out;
  for (const char* method : {"pca", "tsne"}) {
    const auto dir = tmp / (std::string("out-") + method);
    int rc = test::run_command(bin + " --threads 1 --quiet embed --model " + (tmp / "m.pt") + " --data " +
                                   (tmp / "data") + " --out " + dir + " --method " + method +
                                   " --iterations 250 --max 20",
                               &out, true);
    ASSERT_EQ(rc, 0) << out;
    EXPECT_EQ(cv::imread(dir + "/map.png").size(), cv::Size(800, 800)) << method;
    std::ifstream in(dir + "/embeddings.csv");
    int lines = 0;
    for (std::string l; std::getline(in, l);) ++lines;
    EXPECT_EQ(lines, 21) << method;  // header + the --max 20 images
  }
  int rc = test::run_command(bin + " embed --model " + (tmp / "m.pt") + " --data " + (tmp / "data") + " --out " +
                                 (tmp / "x") + " --method umap",
                             &out, true);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("--method"), std::string::npos) << out;

  sfs::create_directories(tmp / "run");
  write_metrics(tmp / "run/metrics.jsonl", 2);
  rc = test::run_command(bin + " plot " + (tmp / "run"), &out, true);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_TRUE(sfs::exists(tmp / "run/curves.png"));
  EXPECT_TRUE(sfs::exists(tmp / "run/confusion.png"));
}

TEST(Plots, TrainerDrawsThePicturesEachEpoch) {
  test::TempDir tmp;
  const std::vector<std::string> classes{"angry", "happy", "sad"};
  test::write_synthetic_folders(tmp / "train", classes, 12, 1);
  test::write_synthetic_folders(tmp / "val", classes, 4, 2);
  train::TrainConfig c;
  c.train_data = tmp / "train";
  c.val_data = tmp / "val";
  c.preset = "fer-tiny";
  c.epochs = 2;
  c.batch_size = 12;
  c.threads = 1;
  c.out = tmp / "run";
  train::train(c);
  cv::Mat curves = cv::imread(tmp / "run/curves.png"), conf = cv::imread(tmp / "run/confusion.png");
  EXPECT_EQ(curves.size(), cv::Size(1200, 480));
  EXPECT_EQ(conf.size(), cv::Size(640, 640));
}
