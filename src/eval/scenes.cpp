// Scene sets: face crops pasted into whole pictures with known boxes (scenes.h).
#include "adcorre/eval/scenes.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "adcorre/data/dataset.h"
#include "adcorre/data/preprocess.h"
#include "adcorre/util/error.h"
#include "adcorre/util/fs.h"

namespace adcorre::eval {

namespace {

// Own uniform draws on top of mt19937_64 (whose output the standard fixes):
// std::uniform_*_distribution differ between standard libraries, and a scene
// set must be the same bytes wherever it is made.
class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  double uniform() { return static_cast<double>(gen_() >> 11) * 0x1.0p-53; }  // [0, 1)
  double uniform(double a, double b) { return a + (b - a) * uniform(); }
  int integer(int a, int b) { return a + static_cast<int>(std::floor(uniform() * (b - a + 1))); }  // [a, b]

 private:
  std::mt19937_64 gen_;
};

struct StyleParams {
  int faces_min = 1, faces_max = 1;
  int side_min = 96, side_max = 240;
  double max_angle = 0;
  double mean_min = 60, mean_max = 200;   // background brightness
  int quality_min = 95, quality_max = 95;
  double blur_max = 0;                    // Gaussian sigma of the whole picture
};

StyleParams style_params(const std::string& style) {
  StyleParams p;
  if (style == "single") return p;
  if (style == "multi") {
    p.faces_min = 2, p.faces_max = 4, p.side_min = 48, p.side_max = 200, p.max_angle = 5;
  } else if (style == "dark") {
    p.side_min = 64, p.side_max = 300, p.max_angle = 5, p.mean_min = 15, p.mean_max = 70;
  } else if (style == "bright") {
    p.side_min = 64, p.side_max = 300, p.max_angle = 5, p.mean_min = 180, p.mean_max = 245;
  } else if (style == "jpeg") {
    p.side_min = 64, p.side_max = 300, p.max_angle = 5, p.quality_min = 15, p.quality_max = 50, p.blur_max = 1.2;
  } else {
    throw Error("unknown scene style '" + style + "'");
  }
  return p;
}

// A smooth random texture: two layers of random colour grids, upscaled
// bicubically (coarse blobs plus finer detail), around a random mean colour.
cv::Mat background(Rng& rng, int w, int h, double mean_min, double mean_max) {
  cv::Mat out(h, w, CV_32FC3, cv::Scalar(0, 0, 0));
  const double mean = rng.uniform(mean_min, mean_max);
  const double tint = (mean_max - mean_min) / 4;
  const cv::Scalar base(mean + rng.uniform(-tint, tint), mean + rng.uniform(-tint, tint), mean + rng.uniform(-tint, tint));
  for (int layer = 0; layer < 2; ++layer) {
    const int gw = layer == 0 ? rng.integer(3, 10) : rng.integer(16, 40);
    const int gh = std::max(2, gw * h / w);
    const double amplitude = layer == 0 ? rng.uniform(10, 40) : rng.uniform(2, 12);
    cv::Mat grid(gh, gw, CV_32FC3);
    for (int y = 0; y < gh; ++y)
      for (int x = 0; x < gw; ++x)
        grid.at<cv::Vec3f>(y, x) = cv::Vec3f(static_cast<float>(rng.uniform(-amplitude, amplitude)),
                                             static_cast<float>(rng.uniform(-amplitude, amplitude)),
                                             static_cast<float>(rng.uniform(-amplitude, amplitude)));
    cv::Mat up;
    cv::resize(grid, up, cv::Size(w, h), 0, 0, cv::INTER_CUBIC);
    out += up;
  }
  out += base;
  cv::Mat bgr;
  out.convertTo(bgr, CV_8UC3);  // saturating: stays 0..255
  return bgr;
}

// The side of the axis-aligned square that holds a side-s square turned by angle.
int turned_extent(int side, double angle_deg) {
  const double a = std::abs(angle_deg) * CV_PI / 180;
  return static_cast<int>(std::ceil(side * (std::abs(std::cos(a)) + std::abs(std::sin(a))))) + 2;
}

// Pastes `face` (gray), resized to box's side and turned by angle about the
// box centre, into the picture, blending its anti-aliased edge.
void paste_face(cv::Mat& picture, const cv::Mat& face, const cv::Rect& box, double angle) {
  cv::Mat sized, bgr;
  cv::resize(face, sized, box.size(), 0, 0, box.width >= face.cols ? cv::INTER_CUBIC : cv::INTER_AREA);
  cv::cvtColor(sized, bgr, cv::COLOR_GRAY2BGR);
  const int extent = turned_extent(box.width, angle);
  const cv::Point2f centre(box.x + box.width / 2.0f, box.y + box.height / 2.0f);
  const cv::Rect region(static_cast<int>(std::floor(centre.x - extent / 2.0)), static_cast<int>(std::floor(centre.y - extent / 2.0)),
                        extent, extent);
  const cv::Rect inside = region & cv::Rect(0, 0, picture.cols, picture.rows);
  // Face coordinates -> region coordinates: rotate about the face centre.
  cv::Mat m = cv::getRotationMatrix2D(cv::Point2f(box.width / 2.0f, box.height / 2.0f), angle, 1.0);
  m.at<double>(0, 2) += centre.x - box.width / 2.0 - inside.x;
  m.at<double>(1, 2) += centre.y - box.height / 2.0 - inside.y;
  cv::Mat warped, mask;
  cv::warpAffine(bgr, warped, m, inside.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT, cv::Scalar::all(0));
  cv::warpAffine(cv::Mat(box.size(), CV_32F, cv::Scalar(1.0f)), mask, m, inside.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT,
                 cv::Scalar(0));
  cv::Mat target = picture(inside);
  for (int y = 0; y < inside.height; ++y) {
    auto* t = target.ptr<cv::Vec3b>(y);
    const auto* f = warped.ptr<cv::Vec3b>(y);
    const float* a = mask.ptr<float>(y);
    for (int x = 0; x < inside.width; ++x) {
      if (a[x] <= 0) continue;
      for (int c = 0; c < 3; ++c) t[x][c] = cv::saturate_cast<uchar>(a[x] * f[x][c] + (1 - a[x]) * t[x][c]);
    }
  }
}

void write_bytes(const std::string& path, const std::vector<uchar>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) throw Error("cannot write the scene picture " + path);
}

}  // namespace

std::vector<std::string> scene_styles() { return {"single", "multi", "dark", "bright", "jpeg", "mixed"}; }

void validate(const SceneOptions& o) {
  const auto styles = scene_styles();
  if (std::find(styles.begin(), styles.end(), o.style) == styles.end())
    throw Error("scenes: unknown style '" + o.style + "' (known: single, multi, dark, bright, jpeg, mixed)");
  check(o.count >= 1, "scenes: count must be >= 1 (got " + std::to_string(o.count) + ")");
  check(o.width >= 96 && o.height >= 96 && o.width <= 8192 && o.height <= 8192,
        "scenes: picture size must be 96..8192 px a side (got " + std::to_string(o.width) + "x" + std::to_string(o.height) + ")");
  const int shorter = std::min(o.width, o.height);
  if (o.min_face != 0) check(o.min_face >= 16 && o.min_face <= shorter, "scenes: min_face must be 16.." + std::to_string(shorter) + " (got " + std::to_string(o.min_face) + ")");
  if (o.max_face != 0) check(o.max_face >= 16 && o.max_face <= shorter, "scenes: max_face must be 16.." + std::to_string(shorter) + " (got " + std::to_string(o.max_face) + ")");
  if (o.min_face != 0 && o.max_face != 0) check(o.min_face <= o.max_face, "scenes: min_face is larger than max_face");
}

std::vector<Scene> make_scenes(const std::string& data_dir, const std::string& out_dir, const SceneOptions& o) {
  validate(o);
  const data::Dataset ds = data::read_dataset(data_dir);
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) throw Error("cannot create the scene folder " + out_dir + ": " + ec.message());

  Rng rng(o.seed);
  // Faces in a seeded order, each used once before any repeats.
  std::vector<size_t> order(ds.samples.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  size_t next = order.size();
  auto next_sample = [&]() -> const data::Sample& {
    if (next == order.size()) {
      for (size_t i = order.size() - 1; i > 0; --i) std::swap(order[i], order[static_cast<size_t>(rng.integer(0, static_cast<int>(i)))]);
      next = 0;
    }
    return ds.samples[order[next++]];
  };

  const std::vector<std::string> single_styles{"single", "multi", "dark", "bright", "jpeg"};
  std::vector<Scene> scenes;
  std::string truth;
  for (int n = 0; n < o.count; ++n) {
    const std::string style = o.style == "mixed" ? single_styles[static_cast<size_t>(rng.integer(0, 4))] : o.style;
    StyleParams p = style_params(style);
    if (o.style == "mixed") p.side_min = 48, p.side_max = 400, p.max_angle = 10;
    if (o.min_face) p.side_min = o.min_face;
    if (o.max_face) p.side_max = o.max_face;
    p.side_max = std::max(p.side_min, p.side_max);
    cv::Mat picture = background(rng, o.width, o.height, p.mean_min, p.mean_max);

    Scene scene;
    char name[32];
    std::snprintf(name, sizeof name, "%06d.jpg", n);
    scene.file = name;
    const int wanted = rng.integer(p.faces_min, p.faces_max);
    std::vector<cv::Rect> taken;  // turned extents of the faces placed so far, with a gap
    for (int f = 0; f < wanted; ++f) {
      int side = rng.integer(p.side_min, p.side_max);
      const double angle = p.max_angle > 0 ? rng.uniform(-p.max_angle, p.max_angle) : 0.0;
      while (side > 16 && turned_extent(side, angle) > std::min(o.width, o.height)) --side;
      const int extent = turned_extent(side, angle);
      bool placed = false;
      for (int attempt = 0; attempt < 40 && !placed; ++attempt) {
        const int ex = rng.integer(0, o.width - extent), ey = rng.integer(0, o.height - extent);
        const cv::Rect outer(ex, ey, extent, extent);
        const int gap = extent / 4;
        const cv::Rect spaced(ex - gap, ey - gap, extent + 2 * gap, extent + 2 * gap);
        if (std::any_of(taken.begin(), taken.end(), [&](const cv::Rect& t) { return (t & spaced).area() > 0; })) continue;
        const cv::Rect box(ex + (extent - side) / 2, ey + (extent - side) / 2, side, side);
        const data::Sample& s = next_sample();
        cv::Mat face = s.image.empty() ? data::decode_image(s.path, 1) : s.image;
        if (face.channels() != 1) cv::cvtColor(face, face, face.channels() == 4 ? cv::COLOR_BGRA2GRAY : cv::COLOR_BGR2GRAY);
        paste_face(picture, face, box, angle);
        taken.push_back(outer);
        scene.faces.push_back({box, ds.classes.at(static_cast<size_t>(s.label)), angle, s.key.empty() ? s.path : s.key});
        placed = true;
      }
    }
    if (p.blur_max > 0) {
      const double sigma = rng.uniform(0.3, p.blur_max);
      cv::GaussianBlur(picture, picture, cv::Size(0, 0), sigma);
    }
    const int quality = rng.integer(p.quality_min, p.quality_max);
    std::vector<uchar> bytes;
    if (!cv::imencode(".jpg", picture, bytes, {cv::IMWRITE_JPEG_QUALITY, quality}))
      throw Error("cannot encode scene picture " + scene.file);
    write_bytes((std::filesystem::path(out_dir) / scene.file).string(), bytes);

    nlohmann::ordered_json line;
    line["file"] = scene.file;
    line["style"] = style;
    line["quality"] = quality;
    line["faces"] = nlohmann::ordered_json::array();
    for (const auto& f : scene.faces)
      line["faces"].push_back({{"box", {f.box.x, f.box.y, f.box.width, f.box.height}},
                               {"label", f.label},
                               {"angle", std::round(f.angle * 1000) / 1000},
                               {"source", f.source}});
    truth += line.dump() + "\n";
    scenes.push_back(std::move(scene));
  }
  fs::write_file_atomic((std::filesystem::path(out_dir) / "truth.jsonl").string(), truth);
  return scenes;
}

std::vector<Scene> read_scene_truth(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / "truth.jsonl").string();
  if (!std::filesystem::exists(path)) throw Error("scene truth file " + path + " not found (make one with adcorre make-scenes)");
  std::istringstream in(fs::read_file(path));
  std::vector<Scene> scenes;
  std::string text;
  int line_no = 0;
  while (std::getline(in, text)) {
    ++line_no;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(line_no);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const std::exception& e) {
      throw Error(where + ": not JSON (" + std::string(e.what()) + ")");
    }
    Scene s;
    try {
      check(j.is_object(), "not a JSON object");
      check(j.contains("file") && j["file"].is_string() && !j["file"].get<std::string>().empty(), "field 'file' must be a non-empty string");
      s.file = j["file"].get<std::string>();
      check(j.contains("faces") && j["faces"].is_array(), "field 'faces' must be an array");
      for (const auto& f : j["faces"]) {
        check(f.is_object() && f.contains("box") && f["box"].is_array() && f["box"].size() == 4,
              "field 'faces[].box' must be [x, y, w, h]");
        for (const auto& v : f["box"]) check(v.is_number_integer(), "field 'faces[].box' must hold integers");
        check(f.contains("label") && f["label"].is_string(), "field 'faces[].label' must be a string");
        SceneFace face;
        face.box = cv::Rect(f["box"][0].get<int>(), f["box"][1].get<int>(), f["box"][2].get<int>(), f["box"][3].get<int>());
        check(face.box.width > 0 && face.box.height > 0, "field 'faces[].box' has an empty size");
        face.label = f["label"].get<std::string>();
        if (f.contains("angle")) {
          check(f["angle"].is_number(), "field 'faces[].angle' must be a number");
          face.angle = f["angle"].get<double>();
        }
        if (f.contains("source") && f["source"].is_string()) face.source = f["source"].get<std::string>();
        s.faces.push_back(std::move(face));
      }
    } catch (const Error& e) {
      throw Error(where + ": " + e.what());
    }
    scenes.push_back(std::move(s));
  }
  if (scenes.empty()) throw Error("scene truth file " + path + " lists no pictures");
  return scenes;
}

}  // namespace adcorre::eval
