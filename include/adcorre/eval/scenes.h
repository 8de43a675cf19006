// Scene sets: labelled face crops (any class-folder dataset, e.g. FER-2013)
// pasted into whole pictures, so the photo path (detector -> crop -> model)
// can be measured against known boxes and labels. A set is a folder of
// pictures plus truth.jsonl, one line per picture:
//   {"file":"000000.jpg","faces":[{"box":[x,y,w,h],"label":"happy","angle":0,"source":"happy/x.jpg"}]}
// `box` is the pasted face square before its rotation (the training framing
// of the face, centred where the face is), `angle` its rotation in degrees
// (counter-clockwise, OpenCV's sign), `source` the face's file relative to
// the dataset root.
//
// Styles (all on a smooth random-texture background, faces resized from the
// crop with bicubic interpolation):
//   single  one face, 96-240 px, upright, JPEG quality 95
//   multi   2-4 faces, 48-200 px, none overlapping, +-5 degrees
//   dark    one face, 64-300 px, a dark background (mean 15-70), +-5 degrees
//   bright  one face, 64-300 px, a bright background (mean 180-245), +-5 degrees
//   jpeg    one face, 64-300 px, JPEG quality 15-50, a little blur, +-5 degrees
//   mixed   each picture one of the above at random, faces 48-400 px, +-10 degrees
// Deterministic: the same dataset, options and seed give the same bytes.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core/mat.hpp>
#include <opencv2/core/types.hpp>

namespace adcorre::eval {

struct SceneOptions {
  std::string style = "single";
  int count = 100;                 // pictures
  int width = 640, height = 480;   // picture size
  uint64_t seed = 1;
  int min_face = 0, max_face = 0;  // face side range in px; 0: the style's
};

struct SceneFace {
  cv::Rect box;            // the face square (before rotation), inside the picture
  std::string label;       // class name, from the dataset's folder
  double angle = 0;        // degrees, counter-clockwise
  std::string source;      // the face's file, relative to the dataset root
};

struct Scene {
  std::string file;        // picture file name inside the set's folder
  std::vector<SceneFace> faces;
};

// The style names above.
std::vector<std::string> scene_styles();

// Throws adcorre::Error naming the bad field (unknown style, count < 1,
// a picture smaller than 96x96, a face range outside 16 .. the picture's
// shorter side, min > max).
void validate(const SceneOptions& opts);

// Makes a scene set from the class-folder dataset at data_dir (read with
// data::read_dataset) into out_dir (created; existing pictures of the same
// names are overwritten): the pictures and truth.jsonl. Faces are drawn
// without repetition until every sample was used once, in a seeded order.
// Returns the scenes written. Throws adcorre::Error for bad options, an
// unreadable dataset or face image (naming the file), or an unwritable folder.
std::vector<Scene> make_scenes(const std::string& data_dir, const std::string& out_dir, const SceneOptions& opts);

// Reads <dir>/truth.jsonl. Throws adcorre::Error naming the file and line for
// a malformed line or a missing/ill-typed field.
std::vector<Scene> read_scene_truth(const std::string& dir);

}  // namespace adcorre::eval
