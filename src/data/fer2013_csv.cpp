// Reader for the FER-2013 Kaggle CSV (emotion,pixels,Usage).
#include <cctype>

#include "adcorre/data/class_names.h"
#include "adcorre/data/readers.h"
#include "adcorre/util/error.h"
#include "adcorre/util/fs.h"
#include "data/csv.h"
#include "data/fer2013_rows.h"

namespace adcorre::data {
namespace detail {

static constexpr int kSide = 48;

std::string fer2013_usage_split(const std::string& usage) {
  auto u = fs::lower(trim(usage));
  if (u == "training") return "train";
  if (u == "publictest") return "val";
  if (u == "privatetest") return "test";
  return "";
}

// Parses "v v v ..." into a 48x48 image; the message says what is wrong.
static bool parse_pixels(const std::string& text, cv::Mat& out, std::string& why) {
  out.create(kSide, kSide, CV_8UC1);
  uint8_t* dst = out.data;
  const int want = kSide * kSide;
  int n = 0;
  const char* p = text.c_str();
  while (*p) {
    while (*p == ' ' || *p == '\t') ++p;
    if (!*p) break;
    if (!std::isdigit(static_cast<unsigned char>(*p))) {
      why = std::string("pixels: '") + *p + "' is not a digit (value " + std::to_string(n + 1) + ")";
      return false;
    }
    int v = 0;
    while (std::isdigit(static_cast<unsigned char>(*p))) {
      v = v * 10 + (*p - '0');
      if (v > 255) {
        why = "pixels: the value at position " + std::to_string(n + 1) + " is over 255";
        return false;
      }
      ++p;
    }
    if (*p && *p != ' ' && *p != '\t') {
      why = std::string("pixels: '") + *p + "' after value " + std::to_string(n + 1);
      return false;
    }
    if (n < want) dst[n] = static_cast<uint8_t>(v);
    ++n;
  }
  if (n != want) {
    why = "pixels has " + std::to_string(n) + " values, expected " + std::to_string(want) + " (48x48)";
    return false;
  }
  return true;
}

std::vector<Fer2013Row> read_fer2013_rows(const std::string& path, const std::string& split) {
  CsvReader csv(path);
  std::vector<std::string> f;
  if (!csv.next(f)) throw Error(path + ": empty file (expected the header emotion,pixels,Usage)");
  const int c_emotion = column_index(f, "emotion"), c_pixels = column_index(f, "pixels"), c_usage = column_index(f, "usage");
  if (c_emotion < 0 || c_pixels < 0)
    throw Error(csv.where("header '" + (csv.raw().size() > 80 ? csv.raw().substr(0, 80) + "...'" : csv.raw() + "'") +
                          " lacks the emotion and pixels columns (FER-2013 CSV: emotion,pixels,Usage)"));
  const size_t ncols = f.size();
  std::vector<Fer2013Row> rows;
  while (csv.next(f)) {
    if (f.size() != ncols)
      throw Error(csv.where("has " + std::to_string(f.size()) + " fields, the header has " + std::to_string(ncols)));
    Fer2013Row r;
    r.line = csv.line();
    long long label;
    if (!parse_int(f[c_emotion], label)) throw Error(csv.where("emotion '" + f[c_emotion] + "' is not an integer"));
    if (label < 0 || label > 6) throw Error(csv.where("emotion " + std::to_string(label) + " out of range 0..6"));
    r.label = static_cast<int>(label);
    if (c_usage >= 0) {
      r.usage = fer2013_usage_split(f[c_usage]);
      if (r.usage.empty())
        throw Error(csv.where("Usage '" + f[c_usage] + "' is not Training, PublicTest or PrivateTest"));
    }
    cv::Mat img;
    std::string why;
    if (!parse_pixels(f[c_pixels], img, why)) throw Error(csv.where(why));
    if (split.empty() || r.usage == split || c_usage < 0) r.image = img;
    rows.push_back(std::move(r));
  }
  return rows;
}

}  // namespace detail

Dataset read_fer2013_csv(const std::string& csv_path, const std::string& split_in) {
  const std::string split = detail::canonical_split(split_in);
  auto rows = detail::read_fer2013_rows(csv_path, split);
  Dataset ds;
  ds.kind = "fer2013-csv";
  ds.root = csv_path;
  ds.split = split;
  ds.classes = fer2013_names();
  for (size_t i = 0; i < rows.size(); ++i) {
    auto& r = rows[i];
    if (r.image.empty()) continue;  // another usage
    Sample s;
    s.path = csv_path + ":" + std::to_string(r.line);
    s.key = "fer2013:" + std::to_string(i);
    s.label = r.label;
    s.image = r.image;
    ds.samples.push_back(std::move(s));
  }
  if (ds.samples.empty())
    throw Error("dataset " + csv_path + " is empty" + (split.empty() ? std::string() : " for split " + split));
  return ds;
}

}  // namespace adcorre::data
