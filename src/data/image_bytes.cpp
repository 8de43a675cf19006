#include "data/image_bytes.h"

#include <cstdint>

namespace adcorre::data::detail {

// Walks the JPEG marker segments (skipping each by its length, so EXIF
// thumbnails inside APP1 are never mistaken for the end) and the
// entropy-coded data after each SOS, until the EOI marker. Reaching the end of
// the bytes first means the file was cut short. Bytes after EOI are ignored.
static std::string jpeg_problem(const unsigned char* u, size_t n) {
  const std::string truncated = "truncated JPEG (the data ends before the end-of-image marker)";
  size_t i = 2;  // after SOI
  for (;;) {
    while (i < n && u[i] != 0xFF) ++i;  // junk between segments: libjpeg skips it too
    while (i < n && u[i] == 0xFF) ++i;  // fill bytes
    if (i >= n) return truncated;
    const uint8_t marker = u[i++];
    if (marker == 0xD9) return "";                                                        // EOI
    if (marker == 0x01 || marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7)) continue;  // no length
    if (i + 2 > n) return truncated;
    const size_t len = (static_cast<size_t>(u[i]) << 8) | u[i + 1];
    if (len < 2) return "corrupt JPEG (segment length " + std::to_string(len) + ")";
    i += len;
    if (i > n) return truncated;
    if (marker == 0xDA) {  // SOS: scan the entropy-coded data up to the next marker
      for (;; ++i) {
        if (i + 1 >= n) return truncated;
        if (u[i] == 0xFF && u[i + 1] != 0x00 && !(u[i + 1] >= 0xD0 && u[i + 1] <= 0xD7)) break;
      }
    }
  }
}

std::string encoded_image_problem(const std::string& b) {
  if (b.empty()) return "empty file";
  const auto* u = reinterpret_cast<const unsigned char*>(b.data());
  const bool jpeg = b.size() >= 3 && u[0] == 0xFF && u[1] == 0xD8 && u[2] == 0xFF;
  return jpeg ? jpeg_problem(u, b.size()) : "";
}

}  // namespace adcorre::data::detail
