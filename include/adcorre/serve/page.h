// The web page served at GET /: one self-contained HTML document (inline CSS
// and JavaScript, no external fonts, scripts or images, so it works offline).
// A person picks a photo or takes a webcam snapshot; the page POSTs it to
// /v1/predict, draws the picture on a canvas with every face's box and label,
// and shows a bar chart of each face's class probabilities.
//
// Hooks for automated tests: <body data-state="idle|busy|done|error"> and
// data-faces="N" after a result; #file is the file input.
#pragma once
#include <string>

namespace adcorre::serve {

const std::string& index_html();

}  // namespace adcorre::serve
