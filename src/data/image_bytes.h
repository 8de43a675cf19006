// Internal: checks on encoded image bytes that OpenCV does not make.
#pragma once
#include <string>

namespace adcorre::data::detail {

// "" when nothing is wrong, else why the bytes are not a whole image.
// OpenCV (libjpeg) decodes a truncated JPEG without an error, filling the
// missing part with gray; training on such a file is silently wrong, so a
// JPEG's segments and scans are walked up to its end-of-image marker (bytes
// after it are tolerated).
std::string encoded_image_problem(const std::string& bytes);

}  // namespace adcorre::data::detail
