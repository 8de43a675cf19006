// Internal: the dlib-backed pieces of infer (HOG detector), kept in their own
// translation unit so dlib's heavy headers are compiled once.
#pragma once
#include <memory>

#include "adcorre/infer/face_detector.h"

namespace adcorre::infer::detail {

// Throws adcorre::Error when adcorre was built without dlib.
std::unique_ptr<FaceDetector> make_dlib_detector(const DetectorOptions& opts);

}  // namespace adcorre::infer::detail
