// Reader for RAF-DB basic (EmoLabel/list_patition_label.txt + Image/aligned|original).
#include <filesystem>
#include <sstream>

#include "adcorre/data/readers.h"
#include "adcorre/util/error.h"
#include "adcorre/util/fs.h"
#include "data/csv.h"

namespace adcorre::data {
namespace sfs = std::filesystem;

namespace {

const char* kLabelFile = "list_patition_label.txt";  // RAF-DB's own spelling

sfs::path find_label_file(const sfs::path& p) {
  if (sfs::is_regular_file(p)) return p;
  for (auto& cand : {p / "EmoLabel" / kLabelFile, p / kLabelFile, p / "basic" / "EmoLabel" / kLabelFile})
    if (sfs::is_regular_file(cand)) return cand;
  throw Error("RAF-DB label file " + std::string(kLabelFile) + " not found in " + p.string() + " (nor in EmoLabel/)");
}

// The image folder and whether it holds the aligned (_aligned.jpg) images.
std::pair<sfs::path, bool> find_images(const sfs::path& basic, const std::string& choice) {
  auto first_dir = [&](const char* name) -> sfs::path {
    for (auto& cand : {basic / "Image" / name, basic / name})
      if (sfs::is_directory(cand)) return cand;
    return {};
  };
  if (choice == "aligned" || choice == "original") {
    auto d = first_dir(choice.c_str());
    if (d.empty()) throw Error("RAF-DB " + choice + " images not found in " + basic.string() + " (Image/" + choice + "/)");
    return {d, choice == "aligned"};
  }
  if (choice == "auto") {
    if (auto d = first_dir("aligned"); !d.empty()) return {d, true};
    if (auto d = first_dir("original"); !d.empty()) return {d, false};
    throw Error("RAF-DB images not found in " + basic.string() + " (expected Image/aligned/ or Image/original/)");
  }
  if (!sfs::is_directory(choice)) throw Error("RAF-DB image folder not found: " + choice + " (rafdb-images=aligned|original|auto|DIR)");
  // A folder given by hand: aligned if its files carry the suffix.
  for (auto& e : sfs::directory_iterator(choice))
    if (e.path().stem().string().find("_aligned") != std::string::npos) return {choice, true};
  return {choice, false};
}

}  // namespace

Dataset read_rafdb(const std::string& path, const std::string& split_in, const RafDbOptions& opts) {
  const std::string split = detail::canonical_split(split_in);
  if (split == "val") throw Error("RAF-DB basic has no val split (its splits: train, test)");
  const sfs::path labels = find_label_file(path);
  // The `basic` folder: the label file lives in basic/EmoLabel/ or basic/.
  sfs::path basic = labels.parent_path();
  if (basic.filename() == "EmoLabel") basic = basic.parent_path();
  auto [image_dir, aligned] = find_images(basic, opts.images);

  Dataset ds;
  ds.kind = "rafdb";
  ds.root = basic.string();
  ds.split = split;
  ds.classes = {"surprise", "fear", "disgust", "happy", "sad", "angry", "neutral"};  // labels 1..7
  detail::CsvReader txt(labels.string(), '\t');  // lines are "name label", split by hand below
  std::vector<std::string> f;
  while (txt.next(f)) {
    std::istringstream line(txt.raw());
    std::string name, label_text, extra;
    line >> name >> label_text;
    if (name.empty() || label_text.empty() || (line >> extra))
      throw Error(txt.where("expected 'NAME LABEL' (e.g. train_00001.jpg 5), got '" + txt.raw() + "'"));
    long long label;
    if (!detail::parse_int(label_text, label)) throw Error(txt.where("label '" + label_text + "' is not an integer"));
    if (label < 1 || label > 7) throw Error(txt.where("label " + label_text + " out of range 1..7"));
    std::string usage = name.rfind("train_", 0) == 0 ? "train" : name.rfind("test_", 0) == 0 ? "test" : "";
    if (usage.empty()) throw Error(txt.where("image name '" + name + "' starts with neither train_ nor test_"));
    if (!split.empty() && usage != split) continue;
    sfs::path file = aligned ? sfs::path(name).stem().string() + "_aligned" + sfs::path(name).extension().string() : name;
    Sample s;
    s.path = (image_dir / file).string();
    s.key = name;
    s.label = static_cast<int>(label - 1);
    ds.samples.push_back(std::move(s));
  }
  if (ds.samples.empty())
    throw Error("dataset " + labels.string() + " is empty" + (split.empty() ? std::string() : " for split " + split));
  return ds;
}

}  // namespace adcorre::data
