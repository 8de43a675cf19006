// data-check: what a dataset holds and what is wrong with it, before anyone
// trains on it. Counts per split and class; problems: unreadable images
// (missing, truncated, not an image), duplicates by content (64-bit FNV-1a
// of the file bytes, or of the pixels for inline formats), images whose size
// differs from the common one, and face boxes outside their image.
//
// Requires a dataset read_dataset can read. Every image is read and decoded
// once (multi-threaded), so this costs about one build_cache of the dataset.
// Throws adcorre::Error for what read_dataset throws for (malformed rows,
// unknown class folders, empty datasets); bad images are reported, not thrown.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace adcorre::data {

struct DataCheckOptions {
  std::string kind = "auto";
  std::string split;       // "" = every split the dataset holds
  std::string options;     // read_dataset's options string
  int threads = 0;         // 0: all cores
  int max_listed = 10;     // examples listed per problem
};

struct SplitCounts {
  std::string split;                 // "train", "val", "test" or ""
  std::vector<std::string> classes;  // the dataset's own order
  std::vector<int64_t> counts;       // per class, samples as read (before decoding)
  int64_t total = 0;
  int64_t unreadable = 0;
};

struct DataCheckReport {
  std::string path, kind;
  std::vector<SplitCounts> splits;
  int64_t images = 0;

  int64_t unreadable = 0;
  std::vector<std::string> unreadable_examples;       // "split/key: reason"

  std::map<std::string, int64_t> sizes;              // "48x48 gray" -> count
  std::string common_size;
  int64_t odd_sizes = 0;                             // images not of the common size
  std::vector<std::string> odd_size_examples;        // "split/key: WxH"

  int64_t boxes_outside = 0;                         // face box not inside its image
  std::vector<std::string> box_examples;

  int64_t duplicate_groups = 0, duplicate_images = 0;
  int64_t duplicate_groups_across_splits = 0, duplicate_groups_conflicting = 0;
  std::vector<std::vector<std::string>> duplicate_examples;  // "split/key (class)"

  bool clean() const { return unreadable == 0 && boxes_outside == 0; }
  nlohmann::json to_json() const;
  std::string to_table() const;  // a readable report
};

DataCheckReport check_dataset(const std::string& path, const DataCheckOptions& opts = {});

// 64-bit FNV-1a of a byte range (the duplicate key).
uint64_t fnv1a64(const void* data, size_t size, uint64_t seed = 1469598103934665603ULL);

}  // namespace adcorre::data
