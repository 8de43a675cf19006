// Pictures drawn with OpenCV (no plotting library): training curves from a
// run folder's metrics.jsonl, the confusion-matrix heatmap, and a 2-D scatter
// of embeddings coloured by class. No torch in this header.
//
// Each draw_* returns a BGR 8-bit image of exactly the requested size; each
// write_* writes a PNG atomically (temp file + rename) and throws
// adcorre::Error naming the file when it cannot.
#pragma once
#include <array>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core/mat.hpp>

#include "adcorre/eval/metrics.h"

namespace adcorre::eval {

// One JSON object per non-empty line. Throws adcorre::Error naming the file and
// line of a line that is not a JSON object.
std::vector<nlohmann::json> read_metrics_jsonl(const std::string& path);

// Three panels per epoch: the total training loss (train_loss, colour 0), the
// loss terms (train_ce, train_fd, train_md, train_ed: colours 1-4; whichever
// are present), and train_accuracy (colour 0) with val_accuracy (colour 1).
// Records need an "epoch" number; missing keys are skipped.
cv::Mat draw_training_curves(const std::vector<nlohmann::json>& records, int width = 1200, int height = 480);

// Heatmap of a row-normalised confusion matrix (values in [0, 1]): class names
// on both axes (rows = truth, columns = prediction), the value in each cell.
// Requires conf to be square with classes.size() rows.
cv::Mat draw_confusion(const std::vector<std::string>& classes, const std::vector<std::vector<double>>& conf,
                       const std::string& title = "confusion (row-normalised)", int size = 640);

// Scatter of 2-D points, one colour per class, with a legend.
// Requires labels.size() == points.size(), each label in [0, classes.size()).
cv::Mat draw_scatter(const std::vector<std::array<double, 2>>& points, const std::vector<int>& labels,
                     const std::vector<std::string>& classes, const std::string& title = "", int size = 800);

// The colour of class i (distinct for the first 10, cycles after).
cv::Scalar class_color(int i);
// The fill colour of a confusion cell of value v in [0, 1] (white to deep blue).
cv::Scalar heat_color(double v);

// Writes an image as PNG (atomically).
void write_png(const std::string& path, const cv::Mat& image);

void write_training_curves(const std::string& metrics_jsonl, const std::string& png);
void write_confusion_png(const Metrics& metrics, const std::string& png);

// Redraws a run folder's pictures: curves.png from metrics.jsonl and
// confusion.png from the last record holding "val_confusion" (skipped when
// none does). `classes` names the confusion rows; when empty, the names come
// from the run's last.pt/best.pt model file, else "0", "1", ...
// Returns the files written.
std::vector<std::string> draw_run_pictures(const std::string& run_dir, std::vector<std::string> classes = {});

}  // namespace adcorre::eval
