// data-check: counts and problems of a dataset (see data_check.h).
#include "adcorre/data/data_check.h"

#include <algorithm>
#include <atomic>
#include <iomanip>
#include <sstream>
#include <thread>
#include <unordered_map>

#include <opencv2/imgcodecs.hpp>

#include "adcorre/data/dataset.h"
#include "adcorre/data/readers.h"
#include "adcorre/util/error.h"
#include "adcorre/util/fs.h"
#include "adcorre/util/log.h"
#include "data/image_bytes.h"

namespace adcorre::data {

uint64_t fnv1a64(const void* data, size_t size, uint64_t h) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}

namespace {

struct Item {  // one sample of one split, after reading its bytes
  std::string name;   // "split/key"
  std::string class_name;
  int split = 0;
  bool ok = false;
  std::string why;
  uint64_t hash = 0;
  int width = 0, height = 0, channels = 0;
  bool box_outside = false;
};

std::string size_name(int w, int h, int c) {
  return std::to_string(w) + "x" + std::to_string(h) + (c == 1 ? " gray" : c == 3 ? " colour" : " " + std::to_string(c) + "ch");
}

void inspect(const Sample& s, Item& it) {
  cv::Mat img;
  if (!s.image.empty()) {
    img = s.image;
    cv::Mat cont = img.isContinuous() ? img : img.clone();
    const int shape[3] = {img.rows, img.cols, img.type()};  // same pixels in another shape differ
    it.hash = fnv1a64(cont.data, cont.total() * cont.elemSize(), fnv1a64(shape, sizeof shape));
  } else {
    std::string bytes;
    try {
      bytes = fs::read_file(s.path);
    } catch (const std::exception& e) {
      it.why = e.what();
      return;
    }
    if (auto why = detail::encoded_image_problem(bytes); !why.empty()) {
      it.why = why;
      return;
    }
    it.hash = fnv1a64(bytes.data(), bytes.size());
    try {
      cv::Mat buf(1, static_cast<int>(bytes.size()), CV_8U, bytes.data());
      img = cv::imdecode(buf, cv::IMREAD_UNCHANGED);
    } catch (const cv::Exception& e) {
      it.why = std::string("cannot decode: ") + e.what();
      return;
    }
    if (img.empty()) {
      it.why = "cannot decode (corrupt, truncated or not an image)";
      return;
    }
  }
  it.ok = true;
  it.width = img.cols, it.height = img.rows, it.channels = img.channels();
  if (!s.crop.empty()) it.box_outside = (s.crop & cv::Rect(0, 0, img.cols, img.rows)) != s.crop;
}

void add_example(std::vector<std::string>& v, const std::string& s, int max) {
  if (static_cast<int>(v.size()) < max) v.push_back(s);
}

}  // namespace

DataCheckReport check_dataset(const std::string& path, const DataCheckOptions& opts) {
  DataCheckReport rep;
  rep.path = path;
  rep.kind = opts.kind.empty() || opts.kind == "auto" ? guess_dataset_kind(path) : opts.kind;
  if (rep.kind.empty()) rep.kind = opts.kind;  // read_dataset will say why it cannot read it
  const auto splits = opts.split.empty() ? dataset_splits(path, rep.kind) : std::vector<std::string>{opts.split};

  std::vector<Dataset> sets;
  for (auto& split : splits) {
    sets.push_back(read_dataset(path, rep.kind, split, opts.options));
    rep.kind = sets.back().kind;
  }
  std::vector<const Sample*> samples;
  std::vector<Item> items;
  for (size_t si = 0; si < sets.size(); ++si) {
    SplitCounts sc;
    sc.split = sets[si].split;
    sc.classes = sets[si].classes;
    sc.counts = sets[si].class_counts();
    sc.total = static_cast<int64_t>(sets[si].samples.size());
    rep.splits.push_back(sc);
    for (auto& s : sets[si].samples) {
      Item it;
      it.split = static_cast<int>(si);
      it.name = (sc.split.empty() ? "" : sc.split + "/") + (s.key.empty() ? s.path : s.key);
      it.class_name = s.label >= 0 && s.label < static_cast<int>(sc.classes.size()) ? sc.classes[s.label] : "?";
      items.push_back(std::move(it));
      samples.push_back(&s);
    }
  }
  rep.images = static_cast<int64_t>(items.size());

  // Read, hash and decode every image, in parallel.
  std::atomic<size_t> next{0};
  const int threads = opts.threads > 0 ? opts.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  auto worker = [&] {
    for (size_t i; (i = next++) < items.size();) inspect(*samples[i], items[i]);
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();

  std::unordered_map<uint64_t, std::vector<size_t>> by_hash;
  for (size_t i = 0; i < items.size(); ++i) {
    auto& it = items[i];
    if (!it.ok) {
      ++rep.unreadable;
      ++rep.splits[it.split].unreadable;
      add_example(rep.unreadable_examples, it.name + ": " + it.why, opts.max_listed);
      continue;
    }
    rep.sizes[size_name(it.width, it.height, it.channels)]++;
    by_hash[it.hash].push_back(i);
    if (it.box_outside) {
      ++rep.boxes_outside;
      add_example(rep.box_examples, it.name, opts.max_listed);
    }
  }
  int64_t most = 0;
  for (auto& [name, n] : rep.sizes)
    if (n > most) most = n, rep.common_size = name;
  for (auto& it : items)
    if (it.ok && size_name(it.width, it.height, it.channels) != rep.common_size) {
      ++rep.odd_sizes;
      add_example(rep.odd_size_examples, it.name + ": " + size_name(it.width, it.height, it.channels), opts.max_listed);
    }
  // Duplicate groups, in a stable order (by first member).
  std::vector<std::vector<size_t>> groups;
  for (auto& [h, members] : by_hash)
    if (members.size() > 1) groups.push_back(members);
  std::sort(groups.begin(), groups.end());
  for (auto& g : groups) {
    ++rep.duplicate_groups;
    rep.duplicate_images += static_cast<int64_t>(g.size());
    bool across = false, conflict = false;
    std::vector<std::string> names;
    for (auto i : g) {
      across |= items[i].split != items[g[0]].split;
      conflict |= items[i].class_name != items[g[0]].class_name;
      names.push_back(items[i].name + " (" + items[i].class_name + ")");
    }
    rep.duplicate_groups_across_splits += across;
    rep.duplicate_groups_conflicting += conflict;
    if (static_cast<int>(rep.duplicate_examples.size()) < opts.max_listed) rep.duplicate_examples.push_back(names);
  }
  return rep;
}

nlohmann::json DataCheckReport::to_json() const {
  using nlohmann::json;
  json j;
  j["path"] = path;
  j["kind"] = kind;
  j["images"] = images;
  j["splits"] = json::array();
  for (auto& s : splits) {
    json counts = json::object();
    for (size_t c = 0; c < s.classes.size(); ++c) counts[s.classes[c]] = s.counts[c];
    j["splits"].push_back({{"split", s.split}, {"classes", s.classes}, {"counts", counts}, {"total", s.total},
                           {"unreadable", s.unreadable}});
  }
  j["problems"] = {
      {"unreadable", {{"count", unreadable}, {"examples", unreadable_examples}}},
      {"duplicates",
       {{"groups", duplicate_groups},
        {"images", duplicate_images},
        {"groups_across_splits", duplicate_groups_across_splits},
        {"groups_with_conflicting_labels", duplicate_groups_conflicting},
        {"examples", duplicate_examples}}},
      {"odd_sizes", {{"count", odd_sizes}, {"common_size", common_size}, {"examples", odd_size_examples}}},
      {"face_boxes_outside", {{"count", boxes_outside}, {"examples", box_examples}}},
  };
  j["sizes"] = sizes;
  j["clean"] = clean();
  return j;
}

std::string DataCheckReport::to_table() const {
  std::ostringstream o;
  o << "dataset " << path << " (" << kind << "), " << images << " images\n\n";
  // Columns: every class of every split, in order of first appearance.
  std::vector<std::string> cols;
  for (auto& s : splits)
    for (auto& c : s.classes)
      if (std::find(cols.begin(), cols.end(), c) == cols.end()) cols.push_back(c);
  std::vector<size_t> width;
  for (auto& c : cols) width.push_back(std::max<size_t>(c.size(), 6));
  o << std::left << std::setw(8) << "split";
  for (size_t c = 0; c < cols.size(); ++c) o << std::right << std::setw(static_cast<int>(width[c]) + 2) << cols[c];
  o << std::right << std::setw(9) << "total" << "\n";
  for (auto& s : splits) {
    o << std::left << std::setw(8) << (s.split.empty() ? "(all)" : s.split);
    for (size_t c = 0; c < cols.size(); ++c) {
      auto it = std::find(s.classes.begin(), s.classes.end(), cols[c]);
      o << std::right << std::setw(static_cast<int>(width[c]) + 2)
        << (it == s.classes.end() ? std::string("-") : std::to_string(s.counts[it - s.classes.begin()]));
    }
    o << std::right << std::setw(9) << s.total << "\n";
  }
  o << "\nimage sizes:";
  for (auto& [name, n] : sizes) o << "  " << name << " " << n;
  o << "\n\nproblems:\n";
  o << "  unreadable images: " << unreadable << "\n";
  for (auto& e : unreadable_examples) o << "    " << e << "\n";
  o << "  duplicates (same content): " << duplicate_groups << " groups, " << duplicate_images << " images; "
    << duplicate_groups_across_splits << " groups across splits, " << duplicate_groups_conflicting
    << " with conflicting labels\n";
  for (size_t g = 0; g < std::min<size_t>(duplicate_examples.size(), 3); ++g) {
    const auto& group = duplicate_examples[g];
    o << "    ";
    for (size_t i = 0; i < std::min<size_t>(group.size(), 4); ++i) o << (i ? " = " : "") << group[i];
    if (group.size() > 4) o << " (and " << group.size() - 4 << " more)";
    o << "\n";
  }
  o << "  odd sizes (not " << (common_size.empty() ? "-" : common_size) << "): " << odd_sizes << "\n";
  for (auto& e : odd_size_examples) o << "    " << e << "\n";
  if (kind == "affectnet" || boxes_outside) {
    o << "  face boxes outside their image: " << boxes_outside << "\n";
    for (auto& e : box_examples) o << "    " << e << "\n";
  }
  return o.str();
}

}  // namespace adcorre::data
