// Turning images into model input, the same way everywhere (train, eval,
// predict, serve), driven by the model's config.
#pragma once
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <opencv2/core/mat.hpp>

#include "adcorre/data/normalize.h"  // normalize(), declared there for the build without OpenCV
#include "adcorre/models/model_config.h"

namespace adcorre::data {

// Decodes an image file (any OpenCV format) to 8-bit gray or BGR.
// Throws adcorre::Error naming the file when it is unreadable or not an image,
// not a regular file (a folder, /dev/zero, a pipe), larger than
// kMaxImageFileBytes, or when its header declares more than kMaxImagePixels
// (a 389 KB PNG can declare 20000 x 20000 and take 1.9 GB to decode): both
// are refused before any pixel is allocated.
constexpr long long kMaxImageFileBytes = 512LL << 20;
constexpr long long kMaxImagePixels = 100'000'000;
cv::Mat decode_image(const std::string& path, int channels);
cv::Mat decode_image_bytes(const std::string& bytes, int channels, const std::string& what = "request body");

// Converts any 8-bit image (gray, BGR, BGRA) to the model's channels and
// colour order, resized to input_size x input_size (INTER_LINEAR, or
// INTER_AREA when shrinking a lot). Returns CV_8UC1 or CV_8UC3 (RGB/BGR as config).
cv::Mat to_model_pixels(const cv::Mat& image, const models::ModelConfig& cfg);

// Packs model-size 8-bit images into a uint8 tensor [N, C, H, W].
at::Tensor pack_u8(const std::vector<cv::Mat>& images);

// Convenience: a batch of images -> model input (float, normalised).
at::Tensor images_to_input(const std::vector<cv::Mat>& images, const models::ModelConfig& cfg);

}  // namespace adcorre::data
