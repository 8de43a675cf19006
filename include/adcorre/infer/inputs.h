// Expanding `predict`'s command-line inputs: files, folders (recursive, in
// name order, only files with an image or video extension) and their kinds.
#pragma once
#include <string>
#include <vector>

namespace adcorre::infer {

enum class InputKind { image, video };

struct InputItem {
  std::string path;      // what to open
  std::string relative;  // name for outputs: relative to the folder it was found in, or the file name
  InputKind kind = InputKind::image;
};

// Lower-case extension checks (".jpg", ".MP4" ...).
bool is_image_file(const std::string& path);
bool is_video_file(const std::string& path);

// Files given explicitly are kept whatever their extension (a file that is no
// image then fails to decode with an error naming it); a path that does not
// exist adds a message to `errors` and is skipped.
std::vector<InputItem> expand_inputs(const std::vector<std::string>& args, std::vector<std::string>& errors);

}  // namespace adcorre::infer
