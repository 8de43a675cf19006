// read_dataset: picks the reader for a dataset kind (or guesses it).
#include <filesystem>

#include "adcorre/data/dataset.h"
#include "adcorre/util/error.h"
#include "adcorre/util/fs.h"

namespace adcorre::data {
namespace sfs = std::filesystem;

Dataset read_dataset(const std::string& path, const std::string& kind_in, const std::string& split,
                     const std::string& options) {
  (void)options;
  std::string kind = kind_in.empty() ? "auto" : kind_in;
  if (!sfs::exists(path)) throw Error("dataset not found: " + path);
  if (kind == "auto") {
    if (sfs::is_directory(path)) {
      // A folder holding train/val/test class folders: pick the split.
      if (!split.empty() && sfs::is_directory(sfs::path(path) / split)) return read_dataset((sfs::path(path) / split).string(), "folders", "", options);
      kind = "folders";
    } else {
      throw Error("cannot guess the dataset kind of " + path + "; pass --dataset");
    }
  }
  if (kind == "folders") {
    auto ds = read_class_folders(path);
    ds.split = split;
    return ds;
  }
  throw Error("unknown dataset kind '" + kind + "' (known: auto, folders)");
}

}  // namespace adcorre::data
