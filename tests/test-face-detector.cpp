// Face detection on the shipped sample photo (examples/astronaut.jpg), the
// mapping of boxes from downscaled detection, face crops and eye alignment.
#include <algorithm>
#include <cmath>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "adcorre/infer/face_align.h"
#include "adcorre/infer/face_detector.h"
#include "adcorre/util/error.h"

using namespace adcorre;
using namespace adcorre::infer;

namespace {

const std::string kSample = std::string(ADCORRE_SOURCE_DIR) + "/examples/astronaut.jpg";

cv::Mat sample() {
  cv::Mat m = cv::imread(kSample, cv::IMREAD_COLOR);
  EXPECT_FALSE(m.empty()) << "cannot read " << kSample;
  return m;
}

// Eileen Collins' face in the 512x512 sample: roughly x 165..285, y 55..190
// (read off the picture, not from a detector).
void expect_is_astronaut_face(const cv::Rect& b, double scale = 1.0) {
  const double cx = (b.x + b.width / 2.0) / scale, cy = (b.y + b.height / 2.0) / scale;
  EXPECT_GT(cx, 190);
  EXPECT_LT(cx, 260);
  EXPECT_GT(cy, 90);
  EXPECT_LT(cy, 165);
  EXPECT_GT(b.width / scale, 60);
  EXPECT_LT(b.width / scale, 200);
}

std::vector<cv::Rect> detect_with(const std::string& kind, const cv::Mat& image, int min_face = DetectorOptions{}.min_face, int max_side = 1280) {
  DetectorOptions o;
  o.kind = kind;
  o.min_face = min_face;
  o.max_side = max_side;
  return make_detector(o)->detect(image);
}

TEST(FaceDetector, HaarFindsTheAstronautsFace) {
  auto boxes = detect_with("haar", sample());
  ASSERT_EQ(boxes.size(), 1u);
  expect_is_astronaut_face(boxes[0]);
}

TEST(FaceDetector, LbpFindsTheAstronautsFace) {
  auto boxes = detect_with("lbp", sample());
  ASSERT_GE(boxes.size(), 1u);
  expect_is_astronaut_face(boxes[0]);
}

TEST(FaceDetector, DlibFindsTheAstronautsFace) {
  if (!dlib_available()) GTEST_SKIP() << "built without dlib";
  auto boxes = detect_with("dlib", sample());
  ASSERT_EQ(boxes.size(), 1u);
  expect_is_astronaut_face(boxes[0]);
}

TEST(FaceDetector, GrayInputWorksToo) {
  cv::Mat gray;
  cv::cvtColor(sample(), gray, cv::COLOR_BGR2GRAY);
  auto boxes = detect_with("haar", gray);
  ASSERT_EQ(boxes.size(), 1u);
  expect_is_astronaut_face(boxes[0]);
}

TEST(FaceDetector, LargeImagesAreDownscaledAndBoxesMappedBack) {
  cv::Mat big;
  cv::resize(sample(), big, cv::Size(), 4, 4, cv::INTER_LINEAR);  // 2048 x 2048
  auto direct = detect_with("haar", sample());
  auto mapped = detect_with("haar", big, 24, 512);  // searched at 512 px, reported at 2048
  ASSERT_EQ(direct.size(), 1u);
  ASSERT_EQ(mapped.size(), 1u);
  expect_is_astronaut_face(mapped[0], 4.0);
  // Within one cascade scale step (10%) of the face size: an unmapped box
  // would be off by a factor of 4.
  const double tol = 0.1 * direct[0].width * 4;
  EXPECT_NEAR(mapped[0].x, direct[0].x * 4, tol);
  EXPECT_NEAR(mapped[0].y, direct[0].y * 4, tol);
  EXPECT_NEAR(mapped[0].width, direct[0].width * 4, tol);
  EXPECT_DOUBLE_EQ(detection_scale(big.size(), 512), 0.25);
  EXPECT_DOUBLE_EQ(detection_scale(big.size(), 0), 1.0);
  EXPECT_DOUBLE_EQ(detection_scale(cv::Size(100, 50), 512), 1.0);
}

TEST(FaceDetector, MinFaceFiltersSmallFaces) {
  EXPECT_EQ(detect_with("haar", sample(), 300).size(), 0u);  // the face is ~110 px
}

TEST(FaceDetector, BlankImageHasNoFace) {
  cv::Mat blank(480, 640, CV_8UC3, cv::Scalar(128, 128, 128));
  EXPECT_TRUE(detect_with("haar", blank).empty());
  EXPECT_TRUE(detect_with("lbp", blank).empty());
  if (dlib_available()) EXPECT_TRUE(detect_with("dlib", blank).empty());
}

TEST(FaceDetector, NoneIsTheWholeImage) {
  cv::Mat crop(60, 50, CV_8UC1, cv::Scalar(0));
  auto boxes = detect_with("none", crop);
  ASSERT_EQ(boxes.size(), 1u);
  EXPECT_EQ(boxes[0], cv::Rect(0, 0, 50, 60));
}

TEST(FaceDetector, BadOptionsAreClearErrors) {
  try {
    detect_with("yolo", sample());
    FAIL() << "unknown kind accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("yolo"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("haar"), std::string::npos);
  }
  EXPECT_THROW(detect_with("haar", sample(), 0), Error);
  EXPECT_THROW(make_detector({"haar", 24, 1280})->detect(cv::Mat()), Error);
  auto kinds = detector_kinds();
  EXPECT_EQ(kinds.front(), "haar");
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "dlib"), dlib_available() ? 1 : 0);
}

TEST(FaceCrop, MarginGrowsASquareAroundTheBox) {
  cv::Mat image(100, 120, CV_8UC1);
  cv::randu(image, 0, 255);
  const cv::Rect box(40, 30, 20, 20);
  cv::Mat exact = crop_face(image, box, 0.0);
  ASSERT_EQ(exact.size(), cv::Size(20, 20));
  EXPECT_EQ(cv::norm(exact, image(box), cv::NORM_INF), 0);  // unrotated: the very pixels
  cv::Mat grown = crop_face(image, box, 0.5);
  ASSERT_EQ(grown.size(), cv::Size(40, 40));
  EXPECT_EQ(cv::norm(grown, image(cv::Rect(30, 20, 40, 40)), cv::NORM_INF), 0);
}

TEST(FaceCrop, EdgesAreReplicatedNotShifted) {
  cv::Mat image(50, 50, CV_8UC1);
  cv::randu(image, 0, 255);
  cv::Mat c = crop_face(image, cv::Rect(0, 0, 10, 10), 0.5);  // 20x20 from (-5, -5)
  ASSERT_EQ(c.size(), cv::Size(20, 20));
  EXPECT_EQ(cv::norm(c(cv::Rect(5, 5, 15, 15)), image(cv::Rect(0, 0, 15, 15)), cv::NORM_INF), 0);
  EXPECT_EQ(c.at<uchar>(0, 0), image.at<uchar>(0, 0));
  EXPECT_THROW(crop_face(image, cv::Rect(0, 0, 0, 10), 0.2), Error);
  EXPECT_THROW(crop_face(image, cv::Rect(0, 0, 10, 10), -0.1), Error);
}

TEST(FaceAlign, EyeAngleFollowsARotationAndAlignmentUndoesIt) {
  if (!dlib_available()) GTEST_SKIP() << "built without dlib";
  const cv::Mat image = sample();
  auto box = detect_with("dlib", image);
  ASSERT_EQ(box.size(), 1u);
  auto aligner = FaceAligner::shared();
  ASSERT_EQ(aligner->landmarks(image, box[0]).size(), 68u);
  const double upright = aligner->eye_angle(image, box[0]);
  EXPECT_LT(std::abs(upright), 8.0);  // she holds her head about level

  // Turn the photo 15 degrees counter-clockwise about the face: the eye line
  // tilts by -15 degrees in image coordinates.
  const cv::Point2f centre(box[0].x + box[0].width / 2.0f, box[0].y + box[0].height / 2.0f);
  cv::Mat turned;
  cv::warpAffine(image, turned, cv::getRotationMatrix2D(centre, 15, 1.0), image.size(), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
  const double tilted = aligner->eye_angle(turned, box[0]);
  EXPECT_NEAR(tilted, upright - 15, 4.0);

  // The aligned crop shows the eyes as level as the original photo.
  cv::Mat aligned = crop_face(turned, box[0], 0.3, tilted);
  const int m = static_cast<int>(std::lround(box[0].width * 0.3));
  const cv::Rect inner(m, m, box[0].width, box[0].height);
  EXPECT_NEAR(aligner->eye_angle(aligned, inner), upright, 4.0);
}

}  // namespace
