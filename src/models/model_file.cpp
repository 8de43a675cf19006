#include "adcorre/models/model_file.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <vector>

#include <torch/torch.h>

#include "adcorre/keras/hdf5.h"
#include "adcorre/models/bn_fold.h"
#include "adcorre/keras/xception_mapping.h"
#include "adcorre/util/error.h"
#include "adcorre/util/fs.h"
#include "adcorre/util/torch_archive.h"
#include "adcorre/util/log.h"

namespace adcorre::models {

namespace {

// A 64-bit checksum of the config text and every tensor's bytes (in name
// order): the zip container of LibTorch 1.13 does not verify its CRCs, so
// flipped bytes inside a tensor would otherwise load silently.
class Checksum {
 public:
  void add(const void* data, size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      mix(w);
    }
    uint64_t tail = 0;
    std::memcpy(&tail, p + i, n - i);
    mix(tail ^ (static_cast<uint64_t>(n) << 56));
  }
  void add(const std::string& s) { add(s.data(), s.size()); }
  void add(const torch::Tensor& t) {
    auto c = t.detach().to(torch::kCPU).contiguous();
    add(c.data_ptr(), c.numel() * c.element_size());
  }
  std::string hex() const {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h_));
    return buf;
  }

 private:
  void mix(uint64_t w) {
    h_ ^= w + 0x9e3779b97f4a7c15ULL + (h_ << 6) + (h_ >> 2);
    h_ *= 0xff51afd7ed558ccdULL;
    h_ ^= h_ >> 33;
  }
  uint64_t h_ = 0xcbf29ce484222325ULL;
};

// A floating-point tensor as it is written with `storage` (float16 rounds).
torch::Tensor as_stored(const torch::Tensor& t, WeightStorage storage) {
  auto c = t.detach().to(torch::kCPU).contiguous();
  if (storage == WeightStorage::Float16 && c.is_floating_point()) c = c.to(torch::kHalf);
  return c;
}

// The checksum covers the values load_model will hold: the stored tensors
// converted back to the network's dtype (float16 storage is rounded first).
std::string checksum_of(const std::string& config_text, FerModelImpl& net, WeightStorage storage = WeightStorage::Float32) {
  Checksum c;
  c.add(config_text);
  auto add_all = [&](const torch::OrderedDict<std::string, torch::Tensor>& tensors) {
    for (auto& p : tensors) {
      c.add(p.key());
      c.add(as_stored(p.value(), storage).to(p.value().scalar_type()));
    }
  };
  add_all(net.named_parameters());
  add_all(net.named_buffers());
  return c.hex();
}

}  // namespace

std::string first_non_finite_tensor(FerModelImpl& net) {
  torch::NoGradGuard ng;
  auto first_bad = [](const torch::OrderedDict<std::string, torch::Tensor>& tensors) -> std::string {
    for (auto& p : tensors)
      if (p.value().is_floating_point() && !torch::isfinite(p.value()).all().item<bool>()) return p.key();
    return "";
  };
  auto bad = first_bad(net.named_parameters());
  return bad.empty() ? first_bad(net.named_buffers()) : bad;
}

void save_model(const std::string& path, const ModelConfig& config, FerModelImpl& net, WeightStorage storage) {
  if (has_folded_batchnorm(net))
    throw Error("refusing to write model file " + path +
                ": its BatchNorm layers are folded for inference (the convolutions' biases have no place in the file); "
                "save the network as loaded by load_model");
  if (auto bad = first_non_finite_tensor(net); !bad.empty())
    throw Error("refusing to write model file " + path + ": tensor '" + bad +
                "' has NaN or infinite values (a diverged run or a damaged source)");
  torch::serialize::OutputArchive archive;
  const std::string config_text = config.to_json().dump();
  archive.write("config_json", c10::IValue(config_text));
  archive.write("checksum", c10::IValue(checksum_of(config_text, net, storage)));
  archive.write("weight_storage", c10::IValue(std::string(storage == WeightStorage::Float16 ? "float16" : "float32")));
  torch::serialize::OutputArchive weights;
  // Weights are stored contiguous (NCHW), float32 or float16, so any reader gets plain tensors.
  {
    torch::NoGradGuard ng;
    for (auto& p : net.named_parameters()) weights.write(p.key(), as_stored(p.value(), storage), false);
    for (auto& b : net.named_buffers()) weights.write(b.key(), as_stored(b.value(), storage), true);
  }
  archive.write("model", weights);
  fs::save_archive_atomic(archive, path, "model file");
}

static torch::serialize::InputArchive open_archive(const std::string& path) {
  torch::serialize::InputArchive archive;
  fs::load_archive_verified(archive, path, "model file");
  return archive;
}

static ModelConfig config_of(torch::serialize::InputArchive& archive, const std::string& path) {
  c10::IValue v;
  if (!archive.try_read("config_json", v) || !v.isString())
    throw Error("model file " + path + " has no adcorre config (not an adcorre model file?)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(v.toStringRef());
  } catch (const std::exception& e) {
    throw Error("model file " + path + ": its config is not valid JSON (" + e.what() + ")");
  }
  try {
    return ModelConfig::from_json(j);
  } catch (const Error& e) {
    throw Error("model file " + path + ": " + e.what());
  }
}

ModelConfig read_model_config(const std::string& path) {
  auto archive = open_archive(path);
  return config_of(archive, path);
}

// Reads every parameter and buffer of `net` from the "model" group; errors name
// the first missing or mismatched tensor.
static void read_weights(torch::serialize::InputArchive& archive, FerModelImpl& net, const std::string& path) {
  torch::serialize::InputArchive weights;
  if (!archive.try_read("model", weights)) throw Error("model file " + path + " has no weights");
  torch::NoGradGuard ng;
  auto load_one = [&](const std::string& key, torch::Tensor& t, bool buffer) {
    torch::Tensor src;
    if (!weights.try_read(key, src, buffer))
      throw Error("model file " + path + " does not match its config: tensor '" + key + "' is missing");
    if (src.sizes() != t.sizes()) {
      std::ostringstream ss;
      ss << "model file " << path << " does not match its config: '" << key << "' is " << src.sizes()
         << ", expected " << t.sizes();
      throw Error(ss.str());
    }
    t.copy_(src);
  };
  for (auto& p : net.named_parameters()) load_one(p.key(), p.value(), false);
  for (auto& b : net.named_buffers()) load_one(b.key(), b.value(), true);
}

LoadedModel load_model(const std::string& path, const std::string& device) {
  auto archive = open_archive(path);
  LoadedModel m;
  m.config = config_of(archive, path);
  m.net = create_model(m.config);
  try {
    read_weights(archive, *m.net, path);
  } catch (const c10::Error& e) {
    throw Error("model file " + path + " is corrupt (" + std::string(e.what_without_backtrace()).substr(0, 200) + ")");
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {  // e.g. std::out_of_range from a crafted archive
    throw Error("model file " + path + " is corrupt (" + std::string(e.what()).substr(0, 200) + ")");
  }
  c10::IValue sum, text;
  if (archive.try_read("checksum", sum) && sum.isString() && archive.try_read("config_json", text)) {
    m.checksum = checksum_of(text.toStringRef(), *m.net);
    if (m.checksum != sum.toStringRef())
      throw Error("model file " + path + " is corrupt: its checksum does not match its contents");
  } else {
    m.checksum = checksum_of(m.config.to_json().dump(), *m.net);  // files written before checksums
  }
  if (auto bad = first_non_finite_tensor(*m.net); !bad.empty())
    throw Error("model file " + path + " has NaN or infinite values in tensor '" + bad + "'; it cannot give predictions");
  m.net->to(torch::Device(device));
  if (device == "cpu") to_channels_last(*m.net);
  m.net->eval();
  return m;
}

LoadedModel load_model_for_inference(const std::string& path, const std::string& device) {
  auto m = load_model(path, device);
  fold_batchnorm(*m.net);
  return m;
}

namespace {

// Where shipped models lie, first match wins (default_model_path's contract).
std::vector<std::filesystem::path> shipped_model_dirs() {
  namespace sfs = std::filesystem;
  std::vector<sfs::path> dirs;
  std::error_code ec;
  auto exe = sfs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    dirs.push_back(exe.parent_path() / "../share/adcorre/models");
    dirs.push_back(exe.parent_path() / "../models");
  }
  // Where libadcorre itself lies: an installed library used by a program
  // elsewhere (python3, a consumer's binary) still finds <prefix>/share.
  Dl_info self{};
  if (dladdr(reinterpret_cast<void*>(&default_model_path), &self) && self.dli_fname) {
    const auto lib_dir = sfs::absolute(self.dli_fname, ec).parent_path();
    for (auto up : {"..", "../.."})  // <prefix>/lib or <prefix>/lib/<multiarch>
      dirs.push_back(lib_dir / up / "share/adcorre/models");
  }
#ifdef ADCORRE_SOURCE_DIR
  dirs.push_back(sfs::path(ADCORRE_SOURCE_DIR) / "models");
#endif
  return dirs;
}

std::string find_shipped_model(const std::string& name) {
  namespace sfs = std::filesystem;
  std::error_code ec;
  for (auto& dir : shipped_model_dirs())
    if (sfs::is_regular_file(dir / name, ec)) return sfs::weakly_canonical(dir / name).string();
  return "";
}

}  // namespace

std::string default_model_path() {
  if (const char* env = std::getenv("ADCORRE_MODEL"); env && *env) return env;
  const char* name = "fer2013-compact.pt";
  if (auto found = find_shipped_model(name); !found.empty()) return found;
  throw Error(std::string("no --model given and the default model ") + name +
              " was not found (looked in <prefix>/share/adcorre/models next to the executable and the library, and <source>/models; set ADCORRE_MODEL)");
}

std::string resolve_model_path(const std::string& model) {
  namespace sfs = std::filesystem;
  if (model.empty()) return default_model_path();
  std::error_code ec;
  if (sfs::exists(model, ec) || model.find('/') != std::string::npos) return model;
  // A bare name: a shipped model (with or without ".pt"), else the name as given
  // so that the loader's error names it.
  for (const auto& name : {model, model + ".pt"})
    if (auto found = find_shipped_model(name); !found.empty()) return found;
  return model;
}

InitReport init_from(FerModelImpl& net, const std::string& source_path) {
  // Keras files (HDF5): ImageNet Xception weights or a Keras Ad-Corre model.
  if (keras::hdf5::is_hdf5_file(source_path)) return keras::init_from_keras(net, source_path);
  auto src = load_model(source_path, "cpu");
  // An ensemble's tensors live under members.<i>., so none would match and
  // training would silently start from random weights.
  if (src.config.arch == "ensemble")
    throw Error("initial weights " + source_path + ": an ensemble of " + std::to_string(src.config.members.size()) +
                " models cannot initialise one network; use one member's own model file");
  InitReport r;
  torch::NoGradGuard ng;
  auto src_params = src.net->named_parameters();
  auto src_buffers = src.net->named_buffers();
  auto copy_all = [&](torch::OrderedDict<std::string, torch::Tensor> dst, torch::OrderedDict<std::string, torch::Tensor>& from) {
    for (auto& p : dst) {
      auto* s = from.find(p.key());
      if (!s) {
        r.missing.push_back(p.key());
      } else if (s->sizes() != p.value().sizes()) {
        r.shape_mismatch.push_back(p.key());
      } else {
        p.value().copy_(*s);
        r.matched++;
      }
    }
    for (auto& s : from)
      if (!dst.find(s.key())) r.unexpected.push_back(s.key());
  };
  copy_all(net.named_parameters(), src_params);
  copy_all(net.named_buffers(), src_buffers);
  // --init is for the backbone (a head may be new): a file that fits none of
  // its tensors (another architecture) would leave the network random.
  int backbone_tensors = 0, backbone_matched = 0;
  for (auto& p : net.named_parameters())
    if (p.key().rfind("backbone.", 0) == 0) {
      ++backbone_tensors;
      auto* s = src_params.find(p.key());
      backbone_matched += s && s->sizes() == p.value().sizes();
    }
  if (r.matched == 0 || (backbone_tensors > 0 && backbone_matched == 0))
    throw Error("initial weights " + source_path + " (arch " + src.config.arch +
                "): no tensor of the backbone matches the network being trained by name and shape (" +
                std::to_string(r.matched) + " tensor(s) of the head did), so nothing useful would be initialised");
  return r;
}

}  // namespace adcorre::models
