// Reader for AffectNet (training.csv / validation.csv with face boxes).
#include <filesystem>

#include "adcorre/data/readers.h"
#include "adcorre/util/error.h"
#include "adcorre/util/log.h"
#include "data/csv.h"

namespace adcorre::data {
namespace sfs = std::filesystem;

namespace {

// The folder the subDirectory_filePath column is relative to.
sfs::path find_image_root(const sfs::path& csv_dir, const std::string& given) {
  if (!given.empty()) {
    if (!sfs::is_directory(given)) throw Error("AffectNet image folder not found: " + given);
    return given;
  }
  for (auto& d : {csv_dir, csv_dir.parent_path()})
    for (auto& cand : {d / "Manually_Annotated_Images", d / "Manually_Annotated" / "Manually_Annotated_Images",
                       d / "Manually_Annotated_compressed" / "Manually_Annotated_Images"})
      if (sfs::is_directory(cand)) return cand;
  return csv_dir;
}

void read_one(const sfs::path& csv_path, const std::string& usage, const AffectNetOptions& opts, Dataset& ds) {
  const sfs::path image_root = find_image_root(csv_path.parent_path(), opts.images_dir);
  detail::CsvReader csv(csv_path.string());
  std::vector<std::string> f;
  if (!csv.next(f)) throw Error(csv_path.string() + ": empty file");
  const int c_file = detail::column_index(f, "subDirectory_filePath"), c_x = detail::column_index(f, "face_x"),
            c_y = detail::column_index(f, "face_y"), c_w = detail::column_index(f, "face_width"),
            c_h = detail::column_index(f, "face_height"), c_expr = detail::column_index(f, "expression");
  if (c_file < 0 || c_x < 0 || c_y < 0 || c_w < 0 || c_h < 0 || c_expr < 0)
    throw Error(csv.where("header '" + csv.raw().substr(0, 200) +
                          "' lacks AffectNet's columns (subDirectory_filePath, face_x, face_y, face_width, "
                          "face_height, expression)"));
  const size_t ncols = f.size();
  const int max_label = opts.classes == 8 ? 7 : 6;
  size_t dropped = 0;
  while (csv.next(f)) {
    if (f.size() != ncols)
      throw Error(csv.where("has " + std::to_string(f.size()) + " fields, the header has " + std::to_string(ncols)));
    long long expr, box[4];
    if (!detail::parse_int(f[c_expr], expr)) throw Error(csv.where("expression '" + f[c_expr] + "' is not an integer"));
    if (expr < 0 || expr > 10) throw Error(csv.where("expression " + std::to_string(expr) + " out of range 0..10"));
    const int cols[4] = {c_x, c_y, c_w, c_h};
    const char* names[4] = {"face_x", "face_y", "face_width", "face_height"};
    for (int i = 0; i < 4; ++i)
      if (!detail::parse_int(f[cols[i]], box[i]) || box[i] < 0 || (i >= 2 && box[i] == 0) || box[i] > 1000000)
        throw Error(csv.where(std::string(names[i]) + " '" + f[cols[i]] + "' is not a valid pixel " +
                              (i >= 2 ? "size (> 0)" : "position (>= 0)")));
    const std::string rel = detail::trim(f[c_file]);
    if (rel.empty()) throw Error(csv.where("subDirectory_filePath is empty"));
    if (expr > max_label) {  // contempt (7-class), none, uncertain, no-face
      ++dropped;
      continue;
    }
    Sample s;
    s.path = (image_root / rel).string();
    s.key = rel;
    s.label = static_cast<int>(expr);
    s.crop = cv::Rect(static_cast<int>(box[0]), static_cast<int>(box[1]), static_cast<int>(box[2]), static_cast<int>(box[3]));
    ds.samples.push_back(std::move(s));
  }
  log::debug("AffectNet " + csv_path.string() + " [" + usage + "]: " + std::to_string(dropped) + " rows left out (" +
             (opts.classes == 8 ? "none/uncertain/no-face" : "contempt/none/uncertain/no-face") + ")");
}

}  // namespace

Dataset read_affectnet(const std::string& path, const std::string& split_in, const AffectNetOptions& opts) {
  const std::string split = detail::canonical_split(split_in);
  if (opts.classes != 7 && opts.classes != 8)
    throw Error("affectnet-classes must be 7 or 8, got " + std::to_string(opts.classes));
  Dataset ds;
  ds.kind = "affectnet";
  ds.root = path;
  ds.split = split;
  ds.classes = {"neutral", "happy", "sad", "surprise", "fear", "disgust", "angry"};  // expression 0..6
  if (opts.classes == 8) ds.classes.push_back("contempt");
  if (sfs::is_regular_file(path)) {
    read_one(path, split.empty() ? "all" : split, opts, ds);
  } else {
    if (split == "test")
      throw Error("AffectNet's test set is not public; its splits are train (training.csv) and val (validation.csv)");
    std::vector<std::pair<std::string, std::string>> files;  // split, file
    if (split.empty() || split == "train") files.emplace_back("train", "training.csv");
    if (split.empty() || split == "val") files.emplace_back("val", "validation.csv");
    for (auto& [usage, name] : files) {
      sfs::path p = sfs::path(path) / name;
      if (!sfs::is_regular_file(p)) p = sfs::path(path) / "Manually_Annotated_file_lists" / name;
      if (!sfs::is_regular_file(p)) throw Error("AffectNet " + name + " not found in " + path);
      read_one(p, usage, opts, ds);
    }
  }
  if (ds.samples.empty())
    throw Error("dataset " + path + " is empty" + (split.empty() ? std::string() : " for split " + split));
  return ds;
}

}  // namespace adcorre::data
