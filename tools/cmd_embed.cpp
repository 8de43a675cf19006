// adcorre embed: a model's embeddings of every image of a dataset (CSV) and
// their 2-D map (t-SNE or PCA) as a PNG scatter coloured by class.
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <numeric>
#include <random>

#include <torch/torch.h>

#include "adcorre/data/dataset.h"
#include "adcorre/data/loader.h"
#include "adcorre/eval/embedding_map.h"
#include "adcorre/eval/evaluate.h"
#include "adcorre/eval/plots.h"
#include "adcorre/models/model_file.h"
#include "adcorre/util/error.h"
#include "adcorre/util/log.h"
#include "cli.h"

namespace {

struct EmbedCli {
  std::string model, data, kind = "auto", split, options, out, method = "tsne";
  int max = 2000, iterations = 1000;
  double perplexity = 30;
  bool features = false, strict = false;
};

int run_embed(const EmbedCli& o) {
  using namespace adcorre;
  namespace sfs = std::filesystem;
  const auto& g = cli::globals();
  if (o.method != "tsne" && o.method != "pca") throw Error("--method must be tsne or pca, not '" + o.method + "'");
  if (o.max < 4) throw Error("--max must be >= 4");
  const std::string model_path = models::resolve_model_path(o.model);
  auto m = models::load_model_for_inference(model_path, g.device);
  auto ds = eval::match_classes(data::read_dataset(o.data, o.kind, o.split, o.options), m.config.class_names);
  if (static_cast<int64_t>(ds.samples.size()) > o.max) {
    // A seeded random subset (exact t-SNE is O(N^2)), kept in dataset order.
    std::vector<size_t> idx(ds.samples.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::mt19937_64 rng(g.seed);
    std::shuffle(idx.begin(), idx.end(), rng);
    idx.resize(o.max);
    std::sort(idx.begin(), idx.end());
    std::vector<data::Sample> kept;
    for (size_t i : idx) kept.push_back(ds.samples[i]);
    log::info("embed: " + std::to_string(o.max) + " of " + std::to_string(ds.samples.size()) + " images (--max)");
    ds.samples = std::move(kept);
  }
  auto cache = data::build_cache(ds, m.config, {g.threads, o.strict, false});
  auto rows = eval::compute_embeddings(*m.net, m.config, cache, o.features, 256, g.device);
  std::vector<int64_t> labels(cache.labels.data_ptr<int64_t>(), cache.labels.data_ptr<int64_t>() + cache.size());

  sfs::create_directories(o.out);
  const auto dir = sfs::path(o.out);
  eval::write_embeddings_csv((dir / "embeddings.csv").string(), rows, cache.keys, labels, cache.classes);
  log::info("embed: " + std::to_string(rows.size(0)) + " x " + std::to_string(rows.size(1)) + " " +
            (o.features ? "backbone features" : "embeddings") + "; computing the " + o.method + " map");
  at::Tensor map;
  if (o.method == "pca") {
    map = eval::pca(rows, 2);
  } else {
    eval::TsneOptions t;
    t.perplexity = o.perplexity;
    t.iterations = o.iterations;
    map = eval::tsne(rows, t);
  }
  eval::write_embeddings_csv((dir / "map.csv").string(), map, cache.keys, labels, cache.classes);
  auto m2 = map.to(torch::kDouble).contiguous();
  std::vector<std::array<double, 2>> pts(labels.size());
  std::vector<int> ilabels(labels.begin(), labels.end());
  for (size_t i = 0; i < pts.size(); ++i) pts[i] = {m2[i][0].item<double>(), m2[i][1].item<double>()};
  const std::string title = std::string(o.method == "pca" ? "PCA" : "t-SNE") + " of " +
                            (o.features ? "backbone features" : "the " + std::to_string(m.config.k) + " embeddings") +
                            ", " + std::to_string(pts.size()) + " images";
  eval::write_png((dir / "map.png").string(), eval::draw_scatter(pts, ilabels, cache.classes, title));
  std::cout << "embeddings " << (dir / "embeddings.csv").string() << " (" << rows.size(0) << " x " << rows.size(1)
            << ")\nmap " << (dir / "map.csv").string() << "\npicture " << (dir / "map.png").string()
            << "\nnearest-neighbour class agreement: embeddings " << eval::nearest_neighbour_agreement(rows, labels)
            << ", map " << eval::nearest_neighbour_agreement(map, labels) << "\n";
  return 0;
}

adcorre::cli::Registrar register_embed({"embed", "embeddings of a dataset (CSV) and their t-SNE/PCA map (PNG)", [](CLI::App& app) {
  auto o = std::make_shared<EmbedCli>();
  app.add_option("--model", o->model, "model file (default: the shipped FER-2013 model)");
  app.add_option("--data", o->data, "dataset path")->required();
  app.add_option("--out", o->out, "output folder (embeddings.csv, map.csv, map.png)")->required();
  app.add_option("--dataset", o->kind, "dataset kind (auto, folders, fer2013-csv, ferplus, rafdb, affectnet)")->capture_default_str();
  app.add_option("--split", o->split, "split where the format holds several (train, val, test)");
  app.add_option("--data-options", o->options, "reader options");
  app.add_option("--method", o->method, "2-D map: tsne | pca")->capture_default_str();
  app.add_option("--max", o->max, "at most this many images (a seeded random subset; exact t-SNE is O(N^2))")->capture_default_str();
  app.add_option("--perplexity", o->perplexity, "t-SNE perplexity")->capture_default_str();
  app.add_option("--iterations", o->iterations, "t-SNE iterations")->capture_default_str();
  app.add_flag("--features", o->features, "map the backbone's pooled features instead of the k embeddings");
  app.add_flag("--strict", o->strict, "an unreadable image is an error instead of being skipped");
  return [o] { return run_embed(*o); };
}});

}  // namespace
