// Readers for the public FER dataset formats. read_dataset (dataset.h) picks
// one by kind or by sniffing the path; these are the readers themselves, for
// callers that want typed options instead of the options string.
//
// Every reader keeps its dataset's own label order in Dataset::classes,
// spelled with canonical names (class_names.h), so models map by name.
// Every reader requires a readable file in the documented format and ensures:
//   - a malformed row is an adcorre::Error "FILE:LINE: what is wrong";
//   - a label out of range is an error naming the file and line;
//   - an empty result (nothing in the requested split) is an error;
//   - images are not opened here: build_cache (loader.h) decodes them and
//     skips unreadable ones with a count (or fails in strict mode).
// Splits are "train", "val", "test" or "" (every row); synonyms such as
// "training", "publictest", "validation" are accepted.
#pragma once
#include <string>

#include "adcorre/data/dataset.h"

namespace adcorre::data {

// FER-2013 Kaggle CSV: header `emotion,pixels,Usage` (column order free;
// without a Usage column every row is taken). emotion 0..6 in FER-2013
// order; pixels: 2304 space-separated values 0..255 (48x48 gray), kept inline
// in Sample::image. Usage Training/PublicTest/PrivateTest = train/val/test.
// Sample::path is "FILE:LINE", Sample::key "fer2013:ROW" (0-based data row,
// the row FER+ uses).
Dataset read_fer2013_csv(const std::string& csv_path, const std::string& split = "");

// FER+ (`fer2013new.csv`: Usage, Image name, votes for neutral, happiness,
// surprise, sadness, anger, disgust, fear, contempt, unknown, NF).
// Images come from `images_dir` (holding FER2013Train / FER2013Valid /
// FER2013Test with ferNNNNNNN.png), or from a FER-2013 CSV joined row by row
// (`fer2013_csv`; its Usage must agree on every row). When both are empty the
// reader looks beside the CSV for those folders, then for fer2013.csv.
// Classes: neutral, happy, surprise, sad, angry, disgust, fear, contempt (the
// FER+ vote order). Label: `vote` = "plurality" (the most voted column; ties
// go to the earlier column) or "majority" (FER+'s own rule: single votes are
// dropped as outliers, then the top column must hold more than half of the
// votes). Rows whose label would be unknown or NF (or with no image name,
// when reading the image folders) are left out. Sample::soft is the vote
// distribution over the 8 emotion columns.
// `path` may also be a map CSV linking image files to FER+ votes (columns
// file, usage, ferplus_votes = 10 space-separated counts; files relative to
// the map's folder), such as ../shared/data/fer2013/fer2013_to_ferplus.csv:
// the shared FER-2013 JPEGs with FER+ labels. Rows without votes are left out.
struct FerPlusOptions {
  std::string images_dir;
  std::string fer2013_csv;
  std::string vote = "plurality";
};
Dataset read_ferplus(const std::string& path, const std::string& split = "", const FerPlusOptions& opts = {});

// RAF-DB basic: `list_patition_label.txt` (sic; lines `train_00001.jpg 5`,
// labels 1..7 = surprise, fear, disgust, happy, sad, angry, neutral).
// `path` is the label file or the `basic` folder (EmoLabel/ and Image/ inside).
// `images` = "aligned" (Image/aligned/train_00001_aligned.jpg), "original"
// (Image/original/train_00001.jpg), "auto" (aligned when present), or a folder.
// Splits by name prefix: train_ = train, test_ = test (RAF-DB has no val).
struct RafDbOptions {
  std::string images = "auto";
};
Dataset read_rafdb(const std::string& path, const std::string& split = "", const RafDbOptions& opts = {});

// AffectNet: `training.csv` (train) / `validation.csv` (val) with columns
// subDirectory_filePath, face_x, face_y, face_width, face_height,
// facial_landmarks, expression, valence, arousal. expression 0..10 = neutral,
// happy, sad, surprise, fear, disgust, anger, contempt, none, uncertain,
// no-face. `classes` 7 drops contempt and 8..10; 8 keeps contempt. The face
// box goes to Sample::crop. `path` is the CSV or the folder holding both;
// images are looked up under `images_dir`, else
// <folder>/Manually_Annotated_Images, <folder>/Manually_Annotated/Manually_Annotated_Images
// or <folder> itself (the first that exists).
struct AffectNetOptions {
  int classes = 7;
  std::string images_dir;
};
Dataset read_affectnet(const std::string& path, const std::string& split = "", const AffectNetOptions& opts = {});

// The dataset kinds read_dataset knows, and the options each accepts.
const std::vector<std::string>& dataset_kinds();

// The kind read_dataset("auto") would pick for `path`, or "" when it cannot tell.
std::string guess_dataset_kind(const std::string& path);

// The splits a dataset at `path` holds, in order (train, val, test), for
// data-check: the split subfolders of a folder dataset, the usages of a CSV.
// {""} for a single unsplit class-folder dataset.
std::vector<std::string> dataset_splits(const std::string& path, const std::string& kind);

}  // namespace adcorre::data
