// read_dataset: picks the reader for a dataset kind (or guesses it from the
// path), parses the options string, and resolves split subfolders.
#include <filesystem>
#include <fstream>
#include <set>

#include "adcorre/data/dataset.h"
#include "adcorre/data/readers.h"
#include "adcorre/util/error.h"
#include "adcorre/util/fs.h"
#include "data/csv.h"
#include "data/fer2013_rows.h"

namespace adcorre::data {
namespace sfs = std::filesystem;

namespace {

// Folder names a split goes by, in the order they are tried.
std::vector<std::string> split_folder_names(const std::string& split) {
  if (split == "train") return {"train", "training", "Training", "Train"};
  if (split == "val") return {"val", "valid", "validation", "PublicTest", "Val", "Validation"};
  if (split == "test") return {"test", "PrivateTest", "Test"};
  return {};
}

// The split subfolder of a folder dataset, or "".
std::string split_folder(const sfs::path& dir, const std::string& split) {
  for (auto& n : split_folder_names(split))
    if (sfs::is_directory(dir / n)) return (dir / n).string();
  return "";
}

std::vector<std::string> folder_splits(const sfs::path& dir) {
  std::vector<std::string> out;
  for (auto* s : {"train", "val", "test"})
    if (!split_folder(dir, s).empty()) out.push_back(s);
  return out;
}

std::string first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return fs::lower(line);
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

const std::vector<std::string>& known_options(const std::string& kind) {
  static const std::vector<std::string> none, ferplus{"ferplus-images", "ferplus-fer2013", "ferplus-vote"},
      rafdb{"rafdb-images"}, affectnet{"affectnet-classes", "affectnet-images"};
  if (kind == "ferplus") return ferplus;
  if (kind == "rafdb") return rafdb;
  if (kind == "affectnet") return affectnet;
  return none;
}

std::string resolve_fer2013_csv(const std::string& path) {
  if (!sfs::is_directory(path)) return path;
  auto p = sfs::path(path) / "fer2013.csv";
  if (!sfs::is_regular_file(p)) throw Error("fer2013.csv not found in " + path);
  return p.string();
}

}  // namespace

const std::vector<std::string>& dataset_kinds() {
  static const std::vector<std::string> k{"auto", "folders", "fer2013-csv", "ferplus", "rafdb", "affectnet"};
  return k;
}

std::string guess_dataset_kind(const std::string& path) {
  const sfs::path p = path;
  if (sfs::is_regular_file(p)) {
    const auto name = fs::lower(p.filename().string());
    if (name == "list_patition_label.txt") return "rafdb";
    if (name == "fer2013new.csv") return "ferplus";
    if (fs::lower(p.extension().string()) != ".csv") return "";
    const auto head = first_line(path);
    if (head.find("subdirectory_filepath") != std::string::npos) return "affectnet";
    if (head.find("image name") != std::string::npos && head.find("usage") != std::string::npos) return "ferplus";
    if (head.find("ferplus_votes") != std::string::npos) return "ferplus";  // the shared FER-2013 -> FER+ map
    if (head.find("emotion") != std::string::npos && head.find("pixels") != std::string::npos) return "fer2013-csv";
    return "";
  }
  if (!sfs::is_directory(p)) return "";
  if (sfs::is_regular_file(p / "fer2013new.csv")) return "ferplus";
  if (sfs::is_regular_file(p / "EmoLabel" / "list_patition_label.txt") || sfs::is_regular_file(p / "list_patition_label.txt"))
    return "rafdb";
  if (sfs::is_regular_file(p / "training.csv") || sfs::is_regular_file(p / "validation.csv") ||
      sfs::is_directory(p / "Manually_Annotated_file_lists"))
    return "affectnet";
  if (sfs::is_regular_file(p / "fer2013.csv")) return "fer2013-csv";
  return "folders";
}

Dataset read_dataset(const std::string& path, const std::string& kind_in, const std::string& split_in,
                     const std::string& options) {
  const std::string split = detail::canonical_split(split_in);
  std::string kind = kind_in.empty() ? "auto" : kind_in;
  if (!sfs::exists(path)) throw Error("dataset not found: " + path);
  if (kind == "auto") {
    kind = guess_dataset_kind(path);
    if (kind.empty())
      throw Error("cannot guess the dataset kind of " + path + "; pass --dataset (" + join(dataset_kinds()) + ")");
  }
  bool known = false;
  for (auto& k : dataset_kinds()) known |= k == kind;
  if (!known) throw Error("unknown dataset kind '" + kind + "' (known: " + join(dataset_kinds()) + ")");
  std::vector<std::string> other;
  for (auto& k : dataset_kinds())
    if (k != kind)
      for (auto& o : known_options(k)) other.push_back(o);
  const auto opt = detail::parse_options(options, known_options(kind), other, kind);
  auto get = [&](const std::string& key, const std::string& def) {
    auto it = opt.find(key);
    return it == opt.end() ? def : it->second;
  };

  if (kind == "folders") {
    if (!sfs::is_directory(path)) throw Error("dataset folder not found: " + path);
    const auto splits = folder_splits(path);
    std::string dir = path;
    if (!splits.empty()) {
      // A folder holding train/val/test class folders: pick the split.
      if (split.empty())
        throw Error(path + " holds the splits " + join(splits) + ": pick one (--split)");
      dir = split_folder(path, split);
      if (dir.empty()) throw Error(path + " has no " + split + " split (it has: " + join(splits) + ")");
    }
    auto ds = read_class_folders(dir);
    ds.split = split;
    return ds;
  }
  if (kind == "fer2013-csv") return read_fer2013_csv(resolve_fer2013_csv(path), split);
  if (kind == "ferplus") {
    FerPlusOptions o;
    o.images_dir = get("ferplus-images", "");
    o.fer2013_csv = get("ferplus-fer2013", "");
    o.vote = get("ferplus-vote", o.vote);
    return read_ferplus(path, split, o);
  }
  if (kind == "rafdb") {
    RafDbOptions o;
    o.images = get("rafdb-images", o.images);
    return read_rafdb(path, split, o);
  }
  // affectnet
  AffectNetOptions o;
  const auto classes = get("affectnet-classes", "7");
  if (classes != "7" && classes != "8") throw Error("affectnet-classes must be 7 or 8, got '" + classes + "'");
  o.classes = std::stoi(classes);
  o.images_dir = get("affectnet-images", "");
  return read_affectnet(path, split, o);
}

std::vector<std::string> dataset_splits(const std::string& path, const std::string& kind_in) {
  std::string kind = kind_in.empty() || kind_in == "auto" ? guess_dataset_kind(path) : kind_in;
  if (kind == "folders") {
    auto s = sfs::is_directory(path) ? folder_splits(path) : std::vector<std::string>{};
    return s.empty() ? std::vector<std::string>{""} : s;
  }
  // CSV and list formats: the usages their rows actually hold.
  std::set<std::string> seen;
  if (kind == "fer2013-csv" || kind == "ferplus") {
    std::string file = kind == "ferplus" ? (sfs::is_directory(path) ? (sfs::path(path) / "fer2013new.csv").string() : path)
                                         : resolve_fer2013_csv(path);
    detail::CsvReader csv(file);
    std::vector<std::string> f;
    if (!csv.next(f)) return {""};
    const int c = detail::column_index(f, "usage");
    if (c < 0) return {""};
    while (csv.next(f))
      if (c < static_cast<int>(f.size())) seen.insert(detail::fer2013_usage_split(f[c]));
  } else if (kind == "rafdb") {
    std::string file = sfs::is_regular_file(path) ? path
                       : sfs::is_regular_file(sfs::path(path) / "EmoLabel" / "list_patition_label.txt")
                           ? (sfs::path(path) / "EmoLabel" / "list_patition_label.txt").string()
                           : (sfs::path(path) / "list_patition_label.txt").string();
    std::ifstream in(file);
    for (std::string line; std::getline(in, line);) {
      auto t = detail::trim(line);
      if (t.rfind("train_", 0) == 0) seen.insert("train");
      if (t.rfind("test_", 0) == 0) seen.insert("test");
    }
  } else if (kind == "affectnet") {
    if (sfs::is_regular_file(path)) return {""};
    for (auto& [s, name] : {std::pair<std::string, std::string>{"train", "training.csv"},
                             std::pair<std::string, std::string>{"val", "validation.csv"}})
      if (sfs::is_regular_file(sfs::path(path) / name) ||
          sfs::is_regular_file(sfs::path(path) / "Manually_Annotated_file_lists" / name))
        seen.insert(s);
  } else {
    return {""};
  }
  std::vector<std::string> out;
  for (auto* s : {"train", "val", "test"})
    if (seen.count(s)) out.push_back(s);
  return out.empty() ? std::vector<std::string>{""} : out;
}

}  // namespace adcorre::data
