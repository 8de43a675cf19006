#include "adcorre/keras/keras_file.h"

#include "adcorre/util/checking_child.h"
#include "adcorre/util/error.h"

namespace adcorre::keras {

std::string weight_kind(const std::string& name) {
  std::string k = name.substr(name.rfind('/') == std::string::npos ? 0 : name.rfind('/') + 1);
  if (auto colon = k.rfind(':'); colon != std::string::npos) k = k.substr(0, colon);
  return k;
}

const std::vector<KerasWeight>& KerasFile::layer_weights(const std::string& layer) const {
  static const std::vector<KerasWeight> none;
  auto it = weights.find(layer);
  return it == weights.end() ? none : it->second;
}

const KerasWeight* KerasFile::find(const std::string& layer, const std::string& kind) const {
  for (auto& w : layer_weights(layer))
    if (w.kind == kind) return &w;
  return nullptr;
}

const KerasWeight& KerasFile::get(const std::string& layer, const std::string& kind) const {
  if (auto* w = find(layer, kind)) return *w;
  throw Error("Keras file " + path + ": layer '" + layer + "' has no weight '" + kind + "'");
}

namespace detail {

KerasFile read_keras_file_in_process(const std::string& path) {
  hdf5::Reader h5(path);
  KerasFile f;
  f.path = path;
  f.keras_version = h5.string_attribute("/", "keras_version").value_or("");
  f.backend = h5.string_attribute("/", "backend").value_or("");
  if (auto cfg = h5.string_attribute("/", "model_config")) {
    try {
      f.model_config = nlohmann::json::parse(*cfg);
    } catch (const std::exception& e) {
      throw Error("Keras file " + path + ": model_config is not valid JSON (" + e.what() + ")");
    }
    if (!f.model_config.is_object() || !f.model_config.contains("class_name"))
      throw Error("Keras file " + path + ": model_config has no class_name");
  }
  // Full models keep the weights in model_weights; weights-only files at the root.
  std::string root = "/";
  if (h5.has_group("model_weights")) root = "model_weights";
  auto names = h5.string_list_attribute(root, "layer_names");
  if (!names) {
    if (!f.weights_only())
      throw Error("Keras file " + path + " has a model_config but no weights (saved with include_optimizer only?)");
    throw Error("file " + path + " is HDF5 but not a Keras model or weights file (no model_config, no layer_names)");
  }
  f.layer_names = *names;
  if (f.keras_version.empty()) f.keras_version = h5.string_attribute(root, "keras_version").value_or("");
  if (f.backend.empty()) f.backend = h5.string_attribute(root, "backend").value_or("");
  const std::string prefix = root == "/" ? "" : root + "/";
  for (auto& layer : f.layer_names) {
    const std::string group = prefix + layer;
    if (!h5.has_group(group)) throw Error("Keras file " + path + ": layer '" + layer + "' is listed but has no group");
    auto wnames = h5.string_list_attribute(group, "weight_names");
    if (!wnames) throw Error("Keras file " + path + ": layer '" + layer + "' has no weight_names attribute");
    auto& list = f.weights[layer];
    for (auto& wn : *wnames) {
      KerasWeight w;
      w.name = wn;
      w.kind = weight_kind(wn);
      try {
        w.value = h5.read_floats(group + "/" + wn);
      } catch (const Error& e) {
        throw Error("Keras file " + path + ": layer '" + layer + "', weight '" + wn + "': " + e.what());
      }
      list.push_back(std::move(w));
    }
  }
  return f;
}

}  // namespace detail

// libhdf5 1.10 (Debian 12) crashes on some damaged files instead of returning
// an error: fuzz_keras_hdf5 found four bytes of the shared mini Xception that
// make H5HG_read segfault while reading a string attribute. So the file is
// read once in a child process first (util/checking_child.h; the reader uses
// no threads and no LibTorch, so forking is safe); a child that dies means
// the file is refused with an error here, an ordinary error in the child is
// this call's error, and only a file the child read to its end is read in
// this process.
KerasFile read_keras_file(const std::string& path) {
  // A damaged file can also make libhdf5 loop (seen under ASan, where the bad
  // read of the crash above lands in mapped memory): the child has a deadline
  // (ADCORRE_HDF5_CHECK_SECONDS, default 60; a sound 90 MB file reads in a
  // few seconds). ADCORRE_HDF5_IN_PROCESS skips the check.
  util::ChildCheckOptions defaults;
  defaults.parser = "libhdf5";
  const auto options = util::child_check_options_from_env("ADCORRE_HDF5", defaults);
  util::run_checked_in_child([&] { (void)detail::read_keras_file_in_process(path); }, "HDF5 file " + path, options);
  return detail::read_keras_file_in_process(path);
}

}  // namespace adcorre::keras
