// A tiny synthetic "expression" dataset the tests generate themselves: each
// class is a distinguishable pattern (bar orientation, blob position) with
// noise, written as 48x48 gray PNGs in class folders.
#pragma once
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace adcorre::test {

inline cv::Mat synthetic_face(int cls, std::mt19937& rng, int size = 48) {
  std::normal_distribution<float> noise(0.f, 20.f);
  std::uniform_int_distribution<int> jitter(-3, 3);
  cv::Mat img(size, size, CV_8UC1, cv::Scalar(100));
  const int c = size / 2 + jitter(rng), d = size / 3;
  switch (cls % 4) {
    case 0: cv::line(img, {c - d, c}, {c + d, c}, cv::Scalar(230), 4); break;        // horizontal bar
    case 1: cv::line(img, {c, c - d}, {c, c + d}, cv::Scalar(230), 4); break;        // vertical bar
    case 2: cv::circle(img, {c, c}, d / 2 + 2, cv::Scalar(20), -1); break;           // dark blob
    default: cv::line(img, {c - d, c - d}, {c + d, c + d}, cv::Scalar(230), 4); break;  // diagonal
  }
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) img.at<uchar>(y, x) = cv::saturate_cast<uchar>(img.at<uchar>(y, x) + noise(rng));
  return img;
}

// Writes <root>/<class>/img_<i>.png for `classes` (canonical names), n per class.
inline void write_synthetic_folders(const std::string& root, const std::vector<std::string>& classes, int n,
                                    unsigned seed) {
  std::mt19937 rng(seed);
  for (size_t c = 0; c < classes.size(); ++c) {
    auto dir = std::filesystem::path(root) / classes[c];
    std::filesystem::create_directories(dir);
    for (int i = 0; i < n; ++i)
      cv::imwrite((dir / ("img_" + std::to_string(i) + ".png")).string(), synthetic_face(static_cast<int>(c), rng));
  }
}

}  // namespace adcorre::test
