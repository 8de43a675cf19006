// Reader for FER+ (fer2013new.csv) with its PNG folders or a FER-2013 CSV.
#include <array>
#include <filesystem>
#include <sstream>

#include "adcorre/data/readers.h"
#include "adcorre/util/error.h"
#include "adcorre/util/log.h"
#include "data/csv.h"
#include "data/fer2013_rows.h"

namespace adcorre::data {
namespace sfs = std::filesystem;

namespace {

constexpr int kVotes = 10, kEmotions = 8;  // 8 emotions, then unknown and NF
const std::array<const char*, kVotes> kVoteColumns{"neutral", "happiness", "surprise", "sadness", "anger",
                                                   "disgust", "fear",      "contempt", "unknown", "NF"};

const char* usage_folder(const std::string& split) {
  return split == "train" ? "FER2013Train" : split == "val" ? "FER2013Valid" : "FER2013Test";
}

// The folder holding FER2013Train/Valid/Test, or "".
std::string find_image_root(const sfs::path& dir) {
  for (auto& cand : {dir, dir / "data"})
    for (auto* sub : {"FER2013Train", "FER2013Valid", "FER2013Test"})
      if (sfs::is_directory(cand / sub)) return cand.string();
  return "";
}

// The label by the chosen rule, or -1 when the row is dropped.
int vote_label(std::array<long long, kVotes> v, const std::string& rule) {
  if (rule == "majority") {
    // FER+'s own "majority" mode (FERPlus/src/ferplus.py): single votes are
    // outliers, and the top column must then hold more than half the votes.
    long long sum = 0;
    for (auto& x : v) {
      if (x <= 1) x = 0;
      sum += x;
    }
    int best = 0;
    for (int i = 1; i < kVotes; ++i)
      if (v[i] > v[best]) best = i;
    if (sum == 0 || 2 * v[best] <= sum) return -1;
    return best < kEmotions ? best : -1;
  }
  int best = 0;
  for (int i = 1; i < kVotes; ++i)
    if (v[i] > v[best]) best = i;
  return v[best] > 0 && best < kEmotions ? best : -1;
}

// The shared FER-2013 JPEGs linked to their FER+ votes by a map CSV
// (file, ..., usage, ferplus_votes "n n n ..."; ../shared/data/fer2013/fer2013_to_ferplus.csv).
Dataset read_ferplus_map(detail::CsvReader& csv, const std::vector<std::string>& header, const std::string& split,
                         const std::string& rule) {
  const int c_file = detail::column_index(header, "file"), c_usage = detail::column_index(header, "usage"),
            c_votes = detail::column_index(header, "ferplus_votes");
  if (c_file < 0 || c_usage < 0)
    throw Error(csv.where("a FER+ map needs the columns file, usage and ferplus_votes"));
  const sfs::path base = sfs::path(csv.path()).parent_path();
  Dataset ds;
  ds.kind = "ferplus";
  ds.root = csv.path();
  ds.split = split;
  ds.classes = {"neutral", "happy", "surprise", "sad", "angry", "disgust", "fear", "contempt"};
  std::vector<std::string> f;
  while (csv.next(f)) {
    if (f.size() != header.size())
      throw Error(csv.where("has " + std::to_string(f.size()) + " fields, the header has " + std::to_string(header.size())));
    const std::string votes_text = detail::trim(f[c_votes]);
    if (votes_text.empty()) continue;  // an image FER+ dropped: no votes
    const std::string usage = detail::fer2013_usage_split(f[c_usage]);
    if (usage.empty()) throw Error(csv.where("usage '" + f[c_usage] + "' is not Training, PublicTest or PrivateTest"));
    if (!split.empty() && usage != split) continue;
    std::array<long long, kVotes> votes;
    std::istringstream in(votes_text);
    std::string tok, extra;
    for (int i = 0; i < kVotes; ++i)
      if (!(in >> tok) || !detail::parse_int(tok, votes[i]) || votes[i] < 0)
        throw Error(csv.where("ferplus_votes '" + votes_text + "' is not 10 counts >= 0"));
    if (in >> extra) throw Error(csv.where("ferplus_votes '" + votes_text + "' has more than 10 counts"));
    const int label = vote_label(votes, rule);
    if (label < 0) continue;
    Sample s;
    s.label = label;
    float sum = 0;
    for (int i = 0; i < kEmotions; ++i) sum += static_cast<float>(votes[i]);
    for (int i = 0; i < kEmotions; ++i) s.soft.push_back(static_cast<float>(votes[i]) / sum);
    s.key = detail::trim(f[c_file]);
    s.path = (base / s.key).string();
    ds.samples.push_back(std::move(s));
  }
  if (ds.samples.empty())
    throw Error("dataset " + csv.path() + " is empty" + (split.empty() ? std::string() : " for split " + split));
  return ds;
}

}  // namespace

Dataset read_ferplus(const std::string& path, const std::string& split_in, const FerPlusOptions& opts) {
  const std::string split = detail::canonical_split(split_in);
  if (opts.vote != "plurality" && opts.vote != "majority")
    throw Error("unknown FER+ vote rule '" + opts.vote + "' (known: plurality, majority)");
  sfs::path csv_path = path;
  if (sfs::is_directory(csv_path)) csv_path /= "fer2013new.csv";
  if (!sfs::is_regular_file(csv_path)) throw Error("FER+ label file not found: " + csv_path.string());
  const sfs::path base = csv_path.parent_path();
  detail::CsvReader csv(csv_path.string());
  std::vector<std::string> f;
  if (!csv.next(f)) throw Error(csv_path.string() + ": empty file");
  if (detail::column_index(f, "ferplus_votes") >= 0) return read_ferplus_map(csv, f, split, opts.vote);

  // Where the pixels come from: PNG folders, else a FER-2013 CSV joined by row.
  std::string image_root, fer_csv = opts.fer2013_csv;
  if (!opts.images_dir.empty()) {
    image_root = find_image_root(opts.images_dir);
    if (image_root.empty())
      throw Error("FER+ image folder " + opts.images_dir + " holds none of FER2013Train, FER2013Valid, FER2013Test");
  } else if (fer_csv.empty()) {
    image_root = find_image_root(base);
    if (image_root.empty() && sfs::is_regular_file(base / "fer2013.csv")) fer_csv = (base / "fer2013.csv").string();
    if (image_root.empty() && fer_csv.empty())
      throw Error("FER+ " + csv_path.string() +
                  ": no images found beside it (FER2013Train/Valid/Test or fer2013.csv); pass ferplus-images=DIR or "
                  "ferplus-fer2013=fer2013.csv");
  }

  const int c_usage = detail::column_index(f, "Usage"), c_name = detail::column_index(f, "Image name");
  std::array<int, kVotes> c_vote;
  for (int i = 0; i < kVotes; ++i) c_vote[i] = detail::column_index(f, kVoteColumns[i]);
  for (int i = 0; i < kVotes; ++i)
    if (c_usage < 0 || c_name < 0 || c_vote[i] < 0)
      throw Error(csv.where("header '" + csv.raw() +
                            "' is not FER+'s (Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,"
                            "contempt,unknown,NF)"));
  const size_t ncols = f.size();

  const bool joined = image_root.empty();
  std::vector<detail::Fer2013Row> fer_rows;
  if (joined) fer_rows = detail::read_fer2013_rows(fer_csv, split);

  Dataset ds;
  ds.kind = "ferplus";
  ds.root = csv_path.string();
  ds.split = split;
  ds.classes = {"neutral", "happy", "surprise", "sad", "angry", "disgust", "fear", "contempt"};
  size_t row = 0, dropped_vote = 0, dropped_name = 0;
  for (; csv.next(f); ++row) {
    if (f.size() != ncols)
      throw Error(csv.where("has " + std::to_string(f.size()) + " fields, the header has " + std::to_string(ncols)));
    const std::string usage = detail::fer2013_usage_split(f[c_usage]);
    if (usage.empty()) throw Error(csv.where("Usage '" + f[c_usage] + "' is not Training, PublicTest or PrivateTest"));
    std::array<long long, kVotes> votes;
    for (int i = 0; i < kVotes; ++i)
      if (!detail::parse_int(f[c_vote[i]], votes[i]) || votes[i] < 0)
        throw Error(csv.where(std::string("vote column ") + kVoteColumns[i] + " '" + f[c_vote[i]] +
                              "' is not a count >= 0"));
    if (joined) {
      if (row >= fer_rows.size())
        throw Error(csv.where("has no matching row in " + fer_csv + " (it has " + std::to_string(fer_rows.size()) +
                              " data rows; the files must be row-aligned)"));
      if (!fer_rows[row].usage.empty() && fer_rows[row].usage != usage)
        throw Error(csv.where("Usage " + f[c_usage] + " differs from " + fer_csv + ":" +
                              std::to_string(fer_rows[row].line) + " (the files must be row-aligned)"));
    }
    if (!split.empty() && usage != split) continue;
    const std::string name = detail::trim(f[c_name]);
    if (joined ? fer_rows[row].image.empty() : name.empty()) {
      ++dropped_name;  // FER+ dropped the image (or the FER-2013 row is another usage)
      continue;
    }
    const int label = vote_label(votes, opts.vote);
    if (label < 0) {
      ++dropped_vote;
      continue;
    }
    Sample s;
    s.label = label;
    float sum = 0;
    for (int i = 0; i < kEmotions; ++i) sum += static_cast<float>(votes[i]);
    for (int i = 0; i < kEmotions; ++i) s.soft.push_back(static_cast<float>(votes[i]) / sum);
    if (joined) {
      s.path = fer_csv + ":" + std::to_string(fer_rows[row].line);
      s.image = fer_rows[row].image;
      s.key = name.empty() ? "fer2013:" + std::to_string(row) : name;
    } else {
      auto rel = sfs::path(usage_folder(usage)) / name;
      s.path = (sfs::path(image_root) / rel).string();
      s.key = rel.string();
    }
    ds.samples.push_back(std::move(s));
  }
  if (joined && row != fer_rows.size())
    throw Error(csv_path.string() + " has " + std::to_string(row) + " data rows but " + fer_csv + " has " +
                std::to_string(fer_rows.size()) + " (the files must be row-aligned)");
  log::debug("FER+ " + csv_path.string() + (split.empty() ? "" : " [" + split + "]") + ": " +
             std::to_string(ds.samples.size()) + " images, " + std::to_string(dropped_vote) +
             " dropped by the vote (unknown/NF/no majority), " + std::to_string(dropped_name) + " without an image");
  if (ds.samples.empty())
    throw Error("dataset " + csv_path.string() + " is empty" + (split.empty() ? std::string() : " for split " + split));
  return ds;
}

}  // namespace adcorre::data
