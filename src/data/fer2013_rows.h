// Internal: the rows of a FER-2013 Kaggle CSV, shared by the FER-2013 reader
// and the FER+ reader (which joins fer2013new.csv to it row by row).
#pragma once
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

namespace adcorre::data::detail {

struct Fer2013Row {
  int line = 0;         // 1-based line in the file
  std::string usage;    // "train", "val", "test", or "" without a Usage column
  int label = -1;       // 0..6
  cv::Mat image;        // 48x48 CV_8UC1; empty for rows outside the wanted split
};

// Reads and validates every data row (in file order, so index = FER+ row).
// Pixels are kept for rows whose usage is `split` ("" = all).
// Throws adcorre::Error("FILE:LINE: ...") for a malformed row.
std::vector<Fer2013Row> read_fer2013_rows(const std::string& path, const std::string& split);

// "Training" / "PublicTest" / "PrivateTest" -> "train" / "val" / "test"; "" if other.
std::string fer2013_usage_split(const std::string& usage);

}  // namespace adcorre::data::detail
