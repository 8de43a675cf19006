// Packed data: a decoded dataset (an ImageCache) in one file, written by
// `adcorre pack` and read back by training and evaluation without decoding
// any image. Only LibTorch and nlohmann-json: a build without OpenCV reads it.
//
// The file is a torch::serialize archive holding "pixels" (uint8
// [N, C, H, W], model-size), "labels" (int64 [N]), optionally "soft" (float
// [N, K]) and "meta_json" (format "adcorre-packed", version 1, classes, keys,
// what it was packed from). uint8 keeps FER-2013 at 48x48 (28,709 images)
// at 66 MB.
#pragma once
#include <string>

#include "adcorre/data/image_cache.h"
#include "adcorre/models/model_config.h"

namespace adcorre::data {

// True when `path` is a file that starts like a packed archive written by
// write_packed (a zip whose name ends in .pack or .adcpack): the cheap test
// callers use to choose between read_packed and decoding a dataset.
bool is_packed_path(const std::string& path);

// Writes `cache` atomically (temp file + rename). `source` says what it was
// packed from (recorded in meta_json). Requires a non-empty cache whose
// pixels are uint8 [N, C, H, W] and labels int64 [N] of the same N.
void write_packed(const std::string& path, const ImageCache& cache, const std::string& source);

// Reads a packed file. Throws adcorre::Error naming the file and the field
// at fault (missing, wrong dtype or shape, keys/classes inconsistent).
ImageCache read_packed(const std::string& path);

// The cache as `cfg`'s input: same size and channels are returned as they
// are; otherwise resized (bilinear, on the 8-bit pixels) and 1 -> 3 channels
// replicated (what OpenCV's GRAY2RGB does). 3 -> 1 is refused: the packed
// colour order is not known here. Classes are matched by name onto
// cfg.class_names; samples of classes the model lacks are left out (and
// then the soft labels, which no longer line up, are dropped).
ImageCache fit_packed(const ImageCache& cache, const models::ModelConfig& cfg, const std::string& path);

}  // namespace adcorre::data
