#include "adcorre/eval/plots.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "adcorre/models/model_file.h"
#include "adcorre/util/error.h"
#include "adcorre/util/fs.h"
#include "adcorre/util/log.h"

namespace adcorre::eval {

namespace sfs = std::filesystem;
using nlohmann::json;

namespace {

const cv::Scalar kWhite(255, 255, 255), kBlack(0, 0, 0), kGrid(225, 225, 225), kAxis(90, 90, 90);
constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;

void put_text(cv::Mat& img, const std::string& s, cv::Point org, double scale, const cv::Scalar& color,
              int thickness = 1) {
  cv::putText(img, s, org, kFont, scale, color, thickness, cv::LINE_AA);
}

cv::Size text_size(const std::string& s, double scale, int thickness = 1) {
  int base = 0;
  return cv::getTextSize(s, kFont, scale, thickness, &base);
}

std::string fmt(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// A "nice" tick step (1, 2 or 5 times a power of ten) giving about `n` ticks.
double nice_step(double range, int n) {
  if (range <= 0) return 1;
  double raw = range / n, p = std::pow(10.0, std::floor(std::log10(raw)));
  double f = raw / p;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

struct Series {
  std::string name;
  cv::Scalar color;
  std::vector<std::pair<double, double>> xy;
};

// One line chart in `area` of `img`: axes, grid, ticks, series, legend.
void line_chart(cv::Mat& img, cv::Rect area, const std::string& title, const std::string& xlabel,
                const std::vector<Series>& series, bool unit_y) {
  const int left = 60, right = 12, top = 34, bottom = 44;
  cv::Rect plot(area.x + left, area.y + top, area.width - left - right, area.height - top - bottom);
  put_text(img, title, {area.x + left, area.y + 22}, 0.6, kBlack, 1);
  double x0 = std::numeric_limits<double>::max(), x1 = -x0, y0 = x0, y1 = -x0;
  for (auto& s : series)
    for (auto& [x, y] : s.xy) {
      if (!std::isfinite(y)) continue;
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  if (x0 > x1) x0 = 0, x1 = 1, y0 = 0, y1 = 1;  // nothing to draw: empty axes
  if (unit_y) y0 = std::min(0.0, y0), y1 = std::max(1.0, y1);
  if (x1 - x0 < 1e-9) x0 -= 0.5, x1 += 0.5;
  if (y1 - y0 < 1e-9) y0 -= 0.5, y1 += 0.5;
  const double ystep = nice_step(y1 - y0, 5);
  y0 = std::floor(y0 / ystep) * ystep, y1 = std::ceil(y1 / ystep) * ystep;
  auto px = [&](double x) { return plot.x + static_cast<int>(std::lround((x - x0) / (x1 - x0) * plot.width)); };
  auto py = [&](double y) { return plot.y + plot.height - static_cast<int>(std::lround((y - y0) / (y1 - y0) * plot.height)); };
  const int ydec = ystep >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(ystep)));
  for (double y = y0; y <= y1 + ystep * 0.5; y += ystep) {
    cv::line(img, {plot.x, py(y)}, {plot.x + plot.width, py(y)}, kGrid, 1);
    auto t = fmt(y, ydec);
    put_text(img, t, {plot.x - 6 - text_size(t, 0.4).width, py(y) + 4}, 0.4, kAxis);
  }
  const double xstep = std::max(1.0, nice_step(x1 - x0, 8));
  for (double x = std::ceil(x0 / xstep) * xstep; x <= x1 + 1e-9; x += xstep) {
    cv::line(img, {px(x), plot.y}, {px(x), plot.y + plot.height}, kGrid, 1);
    auto t = fmt(x, 0);
    put_text(img, t, {px(x) - text_size(t, 0.4).width / 2, plot.y + plot.height + 16}, 0.4, kAxis);
  }
  put_text(img, xlabel, {plot.x + plot.width / 2 - text_size(xlabel, 0.45).width / 2, plot.y + plot.height + 36},
           0.45, kAxis);
  cv::rectangle(img, plot, kAxis, 1);
  for (auto& s : series) {
    std::vector<cv::Point> pts;
    for (auto& [x, y] : s.xy)
      if (std::isfinite(y)) pts.emplace_back(px(x), py(y));
    if (pts.size() > 1) cv::polylines(img, pts, false, s.color, 2, cv::LINE_AA);
    for (auto& p : pts) cv::circle(img, p, 3, s.color, -1, cv::LINE_AA);
  }
  // Legend in the top-right corner of the plot.
  int ly = plot.y + 8, lw = 0;
  for (auto& s : series) lw = std::max(lw, text_size(s.name, 0.45).width);
  const int lx = plot.x + plot.width - lw - 40;
  for (auto& s : series) {
    if (s.xy.empty()) continue;
    cv::rectangle(img, {lx - 4, ly - 2}, {lx + lw + 34, ly + 16}, kWhite, -1);
    cv::line(img, {lx, ly + 8}, {lx + 22, ly + 8}, s.color, 2, cv::LINE_AA);
    put_text(img, s.name, {lx + 28, ly + 13}, 0.45, kBlack);
    ly += 20;
  }
}

}  // namespace

std::vector<json> read_metrics_jsonl(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot read " + path);
  std::vector<json> out;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) throw Error(path + ":" + std::to_string(n) + ": not a JSON object");
    out.push_back(std::move(j));
  }
  return out;
}

// White (0) -> deep blue (1), as matplotlib's "Blues".
cv::Scalar heat_color(double v) {
  v = std::clamp(v, 0.0, 1.0);
  const cv::Vec3d lo(247, 251, 255), hi(107, 48, 8);  // BGR
  cv::Vec3d c = lo + (hi - lo) * v;
  // Whole numbers, so the drawn 8-bit pixels equal the colour exactly.
  return cv::Scalar(std::round(c[0]), std::round(c[1]), std::round(c[2]));
}

cv::Scalar class_color(int i) {
  // Tableau 10 (BGR).
  static const cv::Scalar colors[] = {{180, 119, 31}, {14, 127, 255}, {44, 160, 44},  {40, 39, 214},
                                      {189, 103, 148}, {75, 86, 140}, {194, 119, 227}, {127, 127, 127},
                                      {34, 189, 188},  {207, 190, 23}};
  return colors[((i % 10) + 10) % 10];
}

cv::Mat draw_training_curves(const std::vector<json>& records, int width, int height) {
  check(width >= 600 && height >= 150, "training curves: image size too small (at least 600x150)");
  cv::Mat img(height, width, CV_8UC3, kWhite);
  auto series_of = [&](const std::string& key, const std::string& name, int color) {
    Series s{name, class_color(color), {}};
    for (auto& r : records)
      if (r.contains("epoch") && r["epoch"].is_number() && r.contains(key) && r[key].is_number())
        s.xy.emplace_back(r["epoch"].get<double>(), r[key].get<double>());
    return s;
  };
  // The total is the weighted sum and can be 10x the terms, so it gets its
  // own panel: the terms stay readable.
  std::vector<Series> total, terms, accs;
  if (auto s = series_of("train_loss", "total", 0); !s.xy.empty()) total.push_back(std::move(s));
  const char* term_keys[][2] = {{"train_ce", "ce"}, {"train_fd", "fd"}, {"train_md", "md"}, {"train_ed", "ed"}};
  int c = 1;
  for (auto& k : term_keys) {
    auto s = series_of(k[0], k[1], c++);
    if (!s.xy.empty()) terms.push_back(std::move(s));
  }
  for (auto& s : {series_of("train_accuracy", "train", 0), series_of("val_accuracy", "val", 1)})
    if (!s.xy.empty()) accs.push_back(s);
  const int third = width / 3;
  line_chart(img, {0, 0, third, height}, "training loss (total)", "epoch", total, false);
  line_chart(img, {third, 0, third, height}, "loss terms", "epoch", terms, false);
  line_chart(img, {2 * third, 0, width - 2 * third, height}, "accuracy", "epoch", accs, true);
  return img;
}

cv::Mat draw_confusion(const std::vector<std::string>& classes, const std::vector<std::vector<double>>& conf,
                       const std::string& title, int size) {
  const size_t n = classes.size();
  check(n > 0, "confusion picture: no classes");
  check(conf.size() == n, "confusion picture: " + std::to_string(conf.size()) + " rows for " + std::to_string(n) +
                              " classes");
  for (auto& row : conf) check(row.size() == n, "confusion picture: the matrix is not square");
  check(size >= 200, "confusion picture: image size too small");
  int label_w = 0;
  for (auto& c : classes) label_w = std::max(label_w, text_size(c, 0.5).width);
  const int left = label_w + 40, top = 50, bottom = label_w + 40, right = 20;
  const int grid = std::max(static_cast<int>(n), std::min(size - left - right, size - top - bottom));
  const int cell = std::max(1, grid / static_cast<int>(n));
  cv::Mat img(size, size, CV_8UC3, kWhite);
  put_text(img, title, {left, 30}, 0.6, kBlack);
  const double value_scale = std::clamp(cell / 90.0, 0.3, 0.6);
  for (size_t r = 0; r < n; ++r)
    for (size_t c = 0; c < n; ++c) {
      const double v = conf[r][c];
      cv::Rect box(left + static_cast<int>(c) * cell, top + static_cast<int>(r) * cell, cell, cell);
      cv::rectangle(img, box, heat_color(v), -1);
      cv::rectangle(img, box, kGrid, 1);
      if (cell >= 24) {
        auto t = fmt(v, 2);
        auto ts = text_size(t, value_scale);
        put_text(img, t, {box.x + (cell - ts.width) / 2, box.y + (cell + ts.height) / 2}, value_scale,
                 v > 0.5 ? kWhite : kBlack);
      }
    }
  // Row labels (truth) on the left, column labels (prediction) rotated below.
  for (size_t r = 0; r < n; ++r) {
    auto ts = text_size(classes[r], 0.5);
    put_text(img, classes[r], {left - 8 - ts.width, top + static_cast<int>(r) * cell + (cell + ts.height) / 2}, 0.5,
             kBlack);
  }
  // Column names: drawn right-aligned on a horizontal strip, one band per
  // class, then rotated counter-clockwise so they read upwards and end at the grid.
  cv::Mat strip(static_cast<int>(n) * cell, label_w + 10, CV_8UC3, kWhite), rotated;
  for (size_t c = 0; c < n; ++c) {
    auto ts = text_size(classes[c], 0.5);
    put_text(strip, classes[c], {label_w + 4 - ts.width, static_cast<int>(c) * cell + (cell + ts.height) / 2}, 0.5,
             kBlack);
  }
  cv::rotate(strip, rotated, cv::ROTATE_90_COUNTERCLOCKWISE);
  const int ly = top + static_cast<int>(n) * cell + 4;
  if (ly + rotated.rows <= img.rows && left + rotated.cols <= img.cols)
    rotated.copyTo(img(cv::Rect(left, ly, rotated.cols, rotated.rows)));
  put_text(img, "predicted", {left + static_cast<int>(n) * cell / 2 - 40, std::min(size - 8, ly + rotated.rows + 18)},
           0.45, kAxis);
  // "truth" written vertically along the left edge.
  cv::Mat truth(20, 60, CV_8UC3, kWhite);
  put_text(truth, "truth", {2, 15}, 0.45, kAxis);
  cv::rotate(truth, truth, cv::ROTATE_90_COUNTERCLOCKWISE);
  const int ty = top + static_cast<int>(n) * cell / 2 - truth.rows / 2;
  if (ty >= 0 && ty + truth.rows <= img.rows) truth.copyTo(img(cv::Rect(2, ty, truth.cols, truth.rows)));
  return img;
}

cv::Mat draw_scatter(const std::vector<std::array<double, 2>>& points, const std::vector<int>& labels,
                     const std::vector<std::string>& classes, const std::string& title, int size) {
  check(points.size() == labels.size(), "scatter: " + std::to_string(points.size()) + " points but " +
                                            std::to_string(labels.size()) + " labels");
  check(size >= 200, "scatter: image size too small");
  cv::Mat img(size, size, CV_8UC3, kWhite);
  int legend_w = 0;
  for (auto& c : classes) legend_w = std::max(legend_w, text_size(c, 0.5).width);
  legend_w += 40;
  const int top = title.empty() ? 16 : 40;
  cv::Rect plot(16, top, size - 32 - legend_w, size - top - 16);
  if (!title.empty()) put_text(img, title, {16, 26}, 0.6, kBlack);
  double x0 = std::numeric_limits<double>::max(), x1 = -x0, y0 = x0, y1 = -x0;
  for (auto& p : points) {
    if (!std::isfinite(p[0]) || !std::isfinite(p[1])) continue;
    x0 = std::min(x0, p[0]), x1 = std::max(x1, p[0]), y0 = std::min(y0, p[1]), y1 = std::max(y1, p[1]);
  }
  if (x0 > x1) x0 = y0 = 0, x1 = y1 = 1;
  // Equal scale on both axes keeps distances honest; 3% margin.
  const double span = std::max({x1 - x0, y1 - y0, 1e-12}) * 1.06;
  const double cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
  const double scale = std::min(plot.width, plot.height) / span;
  const int ox = plot.x + plot.width / 2, oy = plot.y + plot.height / 2;
  cv::rectangle(img, plot, kGrid, 1);
  const int radius = points.size() > 2000 ? 2 : 3;
  for (size_t i = 0; i < points.size(); ++i) {
    check(labels[i] >= 0 && labels[i] < static_cast<int>(classes.size()),
          "scatter: label " + std::to_string(labels[i]) + " of point " + std::to_string(i) + " is out of range");
    if (!std::isfinite(points[i][0]) || !std::isfinite(points[i][1])) continue;
    cv::Point p(ox + static_cast<int>(std::lround((points[i][0] - cx) * scale)),
                oy - static_cast<int>(std::lround((points[i][1] - cy) * scale)));
    cv::circle(img, p, radius, class_color(labels[i]), -1, cv::LINE_AA);
  }
  // Legend: one swatch per class, with its point count.
  std::vector<int> counts(classes.size(), 0);
  for (int l : labels) counts[l]++;
  int ly = plot.y + 10;
  for (size_t c = 0; c < classes.size(); ++c) {
    const int lx = plot.x + plot.width + 12;
    cv::circle(img, {lx + 6, ly + 6}, 6, class_color(static_cast<int>(c)), -1, cv::LINE_AA);
    put_text(img, classes[c], {lx + 18, ly + 11}, 0.5, kBlack);
    put_text(img, "(" + std::to_string(counts[c]) + ")", {lx + 18, ly + 27}, 0.4, kAxis);
    ly += 36;
  }
  return img;
}

void write_png(const std::string& path, const cv::Mat& image) {
  std::vector<uchar> buf;
  if (image.empty() || !cv::imencode(".png", image, buf)) throw Error("cannot encode a PNG for " + path);
  fs::write_file_atomic(path, std::string(buf.begin(), buf.end()));
}

void write_training_curves(const std::string& metrics_jsonl, const std::string& png) {
  write_png(png, draw_training_curves(read_metrics_jsonl(metrics_jsonl)));
}

void write_confusion_png(const Metrics& metrics, const std::string& png) {
  write_png(png, draw_confusion(metrics.classes, metrics.confusion(),
                                "confusion (row-normalised), n " + std::to_string(metrics.n) + ", accuracy " +
                                    fmt(metrics.accuracy, 4)));
}

std::vector<std::string> draw_run_pictures(const std::string& run_dir, std::vector<std::string> classes) {
  const sfs::path dir(run_dir);
  const auto metrics_path = (dir / "metrics.jsonl").string();
  if (!sfs::exists(metrics_path)) throw Error("no metrics.jsonl in " + run_dir + " (is it a run folder?)");
  auto records = read_metrics_jsonl(metrics_path);
  std::vector<std::string> written;
  write_png((dir / "curves.png").string(), draw_training_curves(records));
  written.push_back((dir / "curves.png").string());
  const json* last = nullptr;
  for (auto& r : records)
    if (r.contains("val_confusion") && r["val_confusion"].is_array() && !r["val_confusion"].empty()) last = &r;
  if (!last) return written;
  std::vector<std::vector<double>> conf;
  try {
    conf = (*last)["val_confusion"].get<std::vector<std::vector<double>>>();
  } catch (const std::exception& e) {
    throw Error(metrics_path + ": val_confusion is not a matrix of numbers (" + e.what() + ")");
  }
  if (classes.empty())
    for (const char* f : {"last.pt", "best.pt"})
      if (sfs::exists(dir / f)) {
        classes = models::read_model_config((dir / f).string()).class_names;
        break;
      }
  if (classes.size() != conf.size()) {
    classes.clear();
    for (size_t i = 0; i < conf.size(); ++i) classes.push_back(std::to_string(i));
  }
  std::string title = "val confusion (row-normalised)";
  if ((*last).contains("epoch")) title += ", epoch " + (*last)["epoch"].dump();
  write_png((dir / "confusion.png").string(), draw_confusion(classes, conf, title));
  written.push_back((dir / "confusion.png").string());
  return written;
}

}  // namespace adcorre::eval
