#include "adcorre/data/packed.h"

#include <filesystem>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "adcorre/data/class_names.h"
#include "adcorre/util/error.h"
#include "adcorre/util/fs.h"
#include "adcorre/util/torch_archive.h"
#include "adcorre/util/log.h"

namespace adcorre::data {

static const char* kFormat = "adcorre-packed";

bool is_packed_path(const std::string& path) {
  const auto ext = std::filesystem::path(path).extension().string();
  return (ext == ".pack" || ext == ".adcpack") && std::filesystem::is_regular_file(path);
}

void write_packed(const std::string& path, const ImageCache& cache, const std::string& source) {
  check(cache.size() > 0, "nothing to pack into " + path + ": the dataset is empty");
  check(cache.pixels.defined() && cache.pixels.dim() == 4 && cache.pixels.scalar_type() == torch::kUInt8,
        "packing " + path + ": pixels must be uint8 [N, C, H, W]");
  check(cache.pixels.size(0) == cache.size() && cache.keys.size() == static_cast<size_t>(cache.size()),
        "packing " + path + ": pixels, labels and keys disagree on the number of images");
  nlohmann::json meta = {{"format", kFormat}, {"version", 1}, {"classes", cache.classes},
                         {"keys", cache.keys}, {"source", source}};
  torch::serialize::OutputArchive a;
  a.write("meta_json", c10::IValue(meta.dump()));
  a.write("pixels", cache.pixels.contiguous());
  a.write("labels", cache.labels.to(torch::kLong).contiguous());
  if (cache.soft.defined()) a.write("soft", cache.soft.to(torch::kFloat).contiguous());
  fs::save_archive_atomic(a, path, "packed data");
}

ImageCache read_packed(const std::string& path) {
  torch::serialize::InputArchive a;
  fs::load_archive_verified(a, path, "packed data");  // CRC-32s first: a damaged file must not crash the unpickler
  c10::IValue v;
  if (!a.try_read("meta_json", v) || !v.isString()) throw Error("packed data " + path + " has no meta_json (not written by adcorre pack?)");
  nlohmann::json meta;
  try {
    meta = nlohmann::json::parse(v.toStringRef());
  } catch (const std::exception& e) {
    throw Error("packed data " + path + ": meta_json is not JSON: " + e.what());
  }
  check(meta.value("format", "") == kFormat, "packed data " + path + ": meta_json.format is not '" + kFormat + "'");
  check(meta.value("version", 0) == 1, "packed data " + path + ": meta_json.version " + meta.value("version", nlohmann::json()).dump() + " is not 1");
  ImageCache c;
  try {
    c.classes = meta.at("classes").get<std::vector<std::string>>();
    c.keys = meta.at("keys").get<std::vector<std::string>>();
  } catch (const std::exception& e) {
    throw Error("packed data " + path + ": meta_json.classes/keys: " + e.what());
  }
  auto tensor = [&](const char* name, bool required) {
    at::Tensor t;
    if (!a.try_read(name, t) && required) throw Error("packed data " + path + " has no tensor '" + name + "'");
    return t;
  };
  c.pixels = tensor("pixels", true);
  c.labels = tensor("labels", true);
  c.soft = tensor("soft", false);
  const int64_t K = static_cast<int64_t>(c.classes.size());
  check(c.pixels.dim() == 4 && c.pixels.scalar_type() == torch::kUInt8, "packed data " + path + ": 'pixels' is not uint8 [N, C, H, W]");
  check(c.labels.dim() == 1 && c.labels.scalar_type() == torch::kLong && c.labels.size(0) == c.pixels.size(0),
        "packed data " + path + ": 'labels' is not int64 [N] with N = the number of images");
  check(c.keys.size() == static_cast<size_t>(c.labels.size(0)), "packed data " + path + ": meta_json.keys does not have one key per image");
  check(c.labels.numel() == 0 || (c.labels.min().item<int64_t>() >= 0 && c.labels.max().item<int64_t>() < K),
        "packed data " + path + ": a label is outside 0.." + std::to_string(K - 1) + " (meta_json.classes)");
  check(!c.soft.defined() || (c.soft.dim() == 2 && c.soft.size(0) == c.pixels.size(0) && c.soft.size(1) == K),
        "packed data " + path + ": 'soft' is not float [N, classes]");
  return c;
}

ImageCache fit_packed(const ImageCache& cache, const models::ModelConfig& cfg, const std::string& path) {
  ImageCache out = cache;
  const int64_t C = cache.pixels.size(1);
  if (C != cfg.in_channels) {
    check(C == 1 && cfg.in_channels == 3, "packed data " + path + " has " + std::to_string(C) + " channel(s), the model wants " +
                                              std::to_string(cfg.in_channels) + ": pack it again with the model's channels");
    out.pixels = out.pixels.expand({-1, 3, -1, -1}).contiguous();
  }
  if (out.pixels.size(2) != cfg.input_size || out.pixels.size(3) != cfg.input_size) {
    // In chunks: the float copy of a whole upscaled dataset would not fit.
    std::vector<at::Tensor> parts;
    for (int64_t s = 0; s < out.pixels.size(0); s += 1024) {
      auto x = out.pixels.slice(0, s, s + 1024).to(torch::kFloat);
      x = torch::nn::functional::interpolate(
          x, torch::nn::functional::InterpolateFuncOptions()
                 .size(std::vector<int64_t>{cfg.input_size, cfg.input_size})
                 .mode(torch::kBilinear)
                 .align_corners(false));
      parts.push_back(x.round().clamp(0, 255).to(torch::kUInt8));
    }
    out.pixels = torch::cat(parts);
  }
  // Classes by name, as for a decoded dataset.
  auto m = map_classes(cache.classes, cfg.class_names);
  std::vector<int64_t> keep, labels;
  auto lab = cache.labels.accessor<int64_t, 1>();
  for (int64_t i = 0; i < cache.size(); ++i)
    if (m[lab[i]] >= 0) {
      keep.push_back(i);
      labels.push_back(m[lab[i]]);
    }
  std::string dropped;
  for (size_t i = 0; i < m.size(); ++i)
    if (m[i] < 0) dropped += (dropped.empty() ? "" : ", ") + cache.classes[i];
  if (!dropped.empty()) log::warn("classes of " + path + " the model does not know are left out: " + dropped);
  check(!keep.empty(), "no image of packed data " + path + " belongs to a class the model knows");
  out.classes = cfg.class_names;
  if (keep.size() != static_cast<size_t>(cache.size())) {
    auto idx = torch::tensor(keep, torch::kLong);
    out.pixels = out.pixels.index_select(0, idx);
    std::vector<std::string> keys;
    for (auto i : keep) keys.push_back(cache.keys[i]);
    out.keys = std::move(keys);
    out.soft = at::Tensor();  // soft labels over the old classes no longer line up
  } else if (out.soft.defined()) {
    auto soft = torch::zeros({out.soft.size(0), cfg.num_classes()});
    for (size_t j = 0; j < m.size(); ++j)
      if (m[j] >= 0) soft.select(1, m[j]).copy_(out.soft.select(1, static_cast<int64_t>(j)));
    out.soft = soft;
  }
  out.labels = torch::tensor(labels, torch::kLong);
  return out;
}

}  // namespace adcorre::data
