// Reading an image's width and height from its first bytes, before decoding.
// The service uses it to refuse a picture whose pixels would not fit its
// limits (a 100 KB PNG can claim 60000 x 60000 pixels) without ever
// allocating them. Knows PNG, JPEG, GIF, BMP, WebP, TIFF (the first image)
// and PNM (PBM/PGM/PPM), the formats `predict` reads; others return nothing.
#pragma once
#include <optional>
#include <string>

namespace adcorre::serve {

struct ImageHeader {
  std::string format;  // "png", "jpeg", "gif", "bmp", "webp", "tiff", "pgm", "ppm", "pbm"
  long long width = 0;
  long long height = 0;
};

// The format and size the bytes declare, or nullopt when the format is not one
// of the above or the header is truncated; width and height are never
// negative. Never throws; never reads past
// bytes.size().
std::optional<ImageHeader> read_image_header(const std::string& bytes);

}  // namespace adcorre::serve
