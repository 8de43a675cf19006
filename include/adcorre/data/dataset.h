// Dataset: a list of labelled samples and the dataset's own class names.
// Readers for each format fill it; nothing here decodes images.
//
// A sample's pixels come from `path` (a file) or, for formats that hold pixels
// inline (FER-2013 CSV), from `image`. `crop` (when non-empty) is a face box
// to cut out first (AffectNet). `soft` (when non-empty) is a label
// distribution over `classes` (FER+ votes).
#pragma once
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>

namespace adcorre::data {

struct Sample {
  std::string path;     // image file, or "file.csv:LINE" for inline pixels
  std::string key;      // unique key (relative path); FER-2013 reuses names across folders
  int label = -1;       // index into Dataset::classes
  cv::Mat image;        // inline pixels (8-bit), empty when read from `path`
  cv::Rect crop;        // face box, empty = whole image
  std::vector<float> soft;
};

struct Dataset {
  std::string kind;     // "folders", "fer2013-csv", "ferplus", "rafdb", "affectnet"
  std::string root;     // what it was read from
  std::string split;    // "train", "val", "test" or ""
  std::vector<std::string> classes;
  std::vector<Sample> samples;

  std::vector<int64_t> class_counts() const;
  // Keeps only samples whose class is in `names`, re-indexing labels to the
  // order of `names` (dataset classes the model lacks are left out).
  Dataset restricted_to(const std::vector<std::string>& names) const;
};

// Reads a dataset of `kind` ("auto", "folders", "fer2013-csv", "ferplus",
// "rafdb", "affectnet") at `path`. `split` selects a usage where the format
// holds several ("train", "val", "test"). `options` are format-specific
// ("affectnet-classes=7|8", "ferplus-images=DIR", ...).
// Throws adcorre::Error naming the file/line/field at fault, and for an empty
// dataset.
Dataset read_dataset(const std::string& path, const std::string& kind = "auto",
                     const std::string& split = "", const std::string& options = "");

// The class-folder layout: <root>/<class>/*.{jpg,jpeg,png,bmp,tif,tiff}.
// Folder names map to canonical names; an unknown folder is an error listing
// the known names.
Dataset read_class_folders(const std::string& root);

}  // namespace adcorre::data
