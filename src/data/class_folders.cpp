// Reader for the class-folder layout: <root>/<class>/*.{jpg,jpeg,png,bmp,tif,tiff}.
#include <algorithm>
#include <filesystem>

#include "adcorre/data/class_names.h"
#include "adcorre/data/dataset.h"
#include "adcorre/util/error.h"
#include "adcorre/util/fs.h"

namespace adcorre::data {
namespace sfs = std::filesystem;

static bool is_image_ext(const sfs::path& p) {
  auto e = fs::lower(p.extension().string());
  return e == ".jpg" || e == ".jpeg" || e == ".png" || e == ".bmp" || e == ".tif" || e == ".tiff" || e == ".pgm" ||
         e == ".webp";
}

Dataset read_class_folders(const std::string& root) {
  if (!sfs::is_directory(root)) throw Error("dataset folder not found: " + root);
  std::vector<std::pair<std::string, sfs::path>> folders;  // canonical name, folder
  for (auto& entry : sfs::directory_iterator(root)) {
    if (!entry.is_directory()) continue;
    auto name = entry.path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    auto canon = canonical_name(name);
    if (!canon) {
      std::string known;
      for (auto& n : canonical_names()) known += (known.empty() ? "" : ", ") + n;
      throw Error("unknown class folder '" + name + "' in " + root + " (known names: " + known +
                  ", and synonyms such as anger, happiness, sadness, surprised, fearful, disgusted)");
    }
    folders.emplace_back(*canon, entry.path());
  }
  if (folders.empty()) throw Error("no class folders in " + root + " (expected <root>/<class>/*.jpg)");
  // Classes in canonical order (angry, disgust, fear, happy, sad, surprise, neutral, contempt).
  auto order = [](const std::string& n) {
    auto& c = canonical_names();
    return std::find(c.begin(), c.end(), n) - c.begin();
  };
  std::sort(folders.begin(), folders.end(), [&](auto& a, auto& b) { return order(a.first) < order(b.first); });
  Dataset ds;
  ds.kind = "folders";
  ds.root = root;
  for (size_t i = 0; i < folders.size(); ++i) {
    if (i > 0 && folders[i].first == folders[i - 1].first)
      throw Error("class folders " + folders[i - 1].second.string() + " and " + folders[i].second.string() +
                  " name the same class '" + folders[i].first + "'");
    ds.classes.push_back(folders[i].first);
  }
  for (size_t i = 0; i < folders.size(); ++i) {
    std::vector<sfs::path> files;
    for (auto& f : sfs::recursive_directory_iterator(folders[i].second))
      if (f.is_regular_file() && is_image_ext(f.path())) files.push_back(f.path());
    // An empty folder would still become an output class that nothing teaches.
    if (files.empty())
      throw Error("class folder " + folders[i].second.string() + " has no images (.jpg .png .bmp .tif .pgm .webp); "
                  "remove it or add its images");
    std::sort(files.begin(), files.end());
    for (auto& f : files) {
      Sample s;
      s.path = f.string();
      s.key = sfs::relative(f, root).string();  // FER-2013 reuses file names across class folders
      s.label = static_cast<int>(i);
      ds.samples.push_back(std::move(s));
    }
  }
  if (ds.samples.empty()) throw Error("dataset " + root + " is empty: no images in its class folders");
  return ds;
}

}  // namespace adcorre::data
