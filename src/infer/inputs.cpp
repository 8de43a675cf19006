#include "adcorre/infer/inputs.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "adcorre/util/fs.h"

namespace adcorre::infer {

namespace sfs = std::filesystem;

static std::string extension_of(const std::string& path) { return fs::lower(sfs::path(path).extension().string()); }

bool is_image_file(const std::string& path) {
  static const std::set<std::string> exts{".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".tif", ".tiff", ".webp",
                                          ".pgm", ".ppm", ".pbm", ".pnm", ".pxm", ".jp2", ".sr", ".ras", ".exr", ".hdr", ".pic"};
  return exts.count(extension_of(path)) > 0;
}

bool is_video_file(const std::string& path) {
  static const std::set<std::string> exts{".avi", ".mp4", ".m4v", ".mkv", ".mov", ".webm", ".mpg", ".mpeg",
                                          ".wmv", ".flv", ".ogv", ".3gp", ".mts", ".m2ts", ".ts", ".gif"};
  return exts.count(extension_of(path)) > 0;
}

std::vector<InputItem> expand_inputs(const std::vector<std::string>& args, std::vector<std::string>& errors) {
  std::vector<InputItem> items;
  for (const auto& arg : args) {
    std::error_code ec;
    const auto status = sfs::status(arg, ec);
    if (ec || !sfs::exists(status)) {
      errors.push_back(arg + ": no such file or folder");
      continue;
    }
    if (!sfs::is_directory(status)) {
      items.push_back({arg, sfs::path(arg).filename().string(), is_video_file(arg) ? InputKind::video : InputKind::image});
      continue;
    }
    std::vector<sfs::path> found;
    auto it = sfs::recursive_directory_iterator(arg, sfs::directory_options::skip_permission_denied, ec);
    if (ec) {
      errors.push_back(arg + ": cannot list folder (" + ec.message() + ")");
      continue;
    }
    for (auto end = sfs::recursive_directory_iterator(); it != end; it.increment(ec)) {
      if (ec) {
        errors.push_back(arg + ": error while listing (" + ec.message() + ")");
        break;
      }
      const auto& p = it->path();
      if (it->is_regular_file(ec) && (is_image_file(p.string()) || is_video_file(p.string()))) found.push_back(p);
    }
    std::sort(found.begin(), found.end());
    for (const auto& p : found)
      items.push_back({p.string(), p.lexically_relative(arg).string(), is_video_file(p.string()) ? InputKind::video : InputKind::image});
  }
  return items;
}

}  // namespace adcorre::infer
