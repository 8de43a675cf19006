// Base64 decoding, for the model formats that carry bytes in JSON (Keras
// graph configs, TensorFlow.js graph attributes).
//
// Ensures: the standard and the URL-safe alphabets are both accepted;
//          '=' padding, line breaks and any other byte outside the alphabet
//          are skipped; never overflows, whatever the input.
#pragma once
#include <string>

namespace adcorre::util {

std::string base64_decode(const std::string& in);

}  // namespace adcorre::util
