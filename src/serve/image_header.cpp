#include "adcorre/serve/image_header.h"

#include <cstdint>
#include <cstdlib>

namespace adcorre::serve {
namespace {

uint32_t be16(const std::string& b, size_t i) { return (uint8_t(b[i]) << 8) | uint8_t(b[i + 1]); }
uint32_t be32(const std::string& b, size_t i) { return (be16(b, i) << 16) | be16(b, i + 2); }
uint32_t le16(const std::string& b, size_t i) { return uint8_t(b[i]) | (uint8_t(b[i + 1]) << 8); }
uint32_t le24(const std::string& b, size_t i) { return le16(b, i) | (uint8_t(b[i + 2]) << 16); }
uint32_t le32(const std::string& b, size_t i) { return le16(b, i) | (le16(b, i + 2) << 16); }

std::optional<ImageHeader> png(const std::string& b) {
  // signature (8) + IHDR length (4) + "IHDR" (4) + width (4) + height (4)
  if (b.size() < 24 || b.compare(12, 4, "IHDR") != 0) return std::nullopt;
  return ImageHeader{"png", be32(b, 16), be32(b, 20)};
}

std::optional<ImageHeader> jpeg(const std::string& b) {
  // Walk the marker segments up to the first start-of-frame (SOF0..SOF15,
  // except DHT C4, JPG C8 and DAC CC), which holds height then width.
  size_t i = 2;
  while (i + 4 <= b.size()) {
    if (uint8_t(b[i]) != 0xFF) return std::nullopt;
    const uint8_t marker = uint8_t(b[i + 1]);
    if (marker == 0xFF) { ++i; continue; }  // fill byte
    if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) { i += 2; continue; }
    if (marker == 0xD9 || marker == 0xDA) return std::nullopt;  // end of image / scan before any frame
    const size_t len = be16(b, i + 2);
    if (len < 2) return std::nullopt;
    if (marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC) {
      if (i + 9 > b.size()) return std::nullopt;
      return ImageHeader{"jpeg", be16(b, i + 7), be16(b, i + 5)};
    }
    i += 2 + len;
  }
  return std::nullopt;
}

std::optional<ImageHeader> gif(const std::string& b) {
  if (b.size() < 10) return std::nullopt;
  return ImageHeader{"gif", le16(b, 6), le16(b, 8)};
}

std::optional<ImageHeader> bmp(const std::string& b) {
  if (b.size() < 26) return std::nullopt;
  const uint32_t header_size = le32(b, 14);
  if (header_size == 12) return ImageHeader{"bmp", le16(b, 18), le16(b, 20)};  // OS/2 BITMAPCOREHEADER
  const auto width = static_cast<int32_t>(le32(b, 18));
  const auto height = static_cast<int32_t>(le32(b, 22));  // negative: top-down rows
  // A negative width is no BMP; it made width * height negative, which
  // passed every "too many pixels" check (found by fuzz_image_header).
  if (width < 0) return std::nullopt;
  return ImageHeader{"bmp", width, std::llabs(static_cast<long long>(height))};
}

std::optional<ImageHeader> webp(const std::string& b) {
  if (b.size() < 30) return std::nullopt;
  if (b.compare(12, 4, "VP8 ") == 0)  // lossy: 14-bit sizes after the frame tag and start code
    return ImageHeader{"webp", le16(b, 26) & 0x3FFF, le16(b, 28) & 0x3FFF};
  if (b.compare(12, 4, "VP8L") == 0) {  // lossless: 14-bit width-1, height-1 packed after 0x2F
    const uint32_t bits = le32(b, 21);
    return ImageHeader{"webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1};
  }
  if (b.compare(12, 4, "VP8X") == 0)  // extended: 24-bit canvas width-1, height-1
    return ImageHeader{"webp", le24(b, 24) + 1, le24(b, 27) + 1};
  return std::nullopt;
}

// TIFF: the first image file directory's ImageWidth (256) and ImageLength
// (257) entries, SHORT or LONG, in the file's byte order ("II" little, "MM" big).
std::optional<ImageHeader> tiff(const std::string& b) {
  if (b.size() < 8) return std::nullopt;
  const bool le = b[0] == 'I';
  auto u16 = [&](size_t i) { return le ? le16(b, i) : be16(b, i); };
  auto u32 = [&](size_t i) { return le ? le32(b, i) : be32(b, i); };
  const size_t ifd = u32(4);
  if (ifd < 8 || ifd > b.size() || b.size() - ifd < 2) return std::nullopt;
  const size_t entries = u16(ifd);
  long long width = -1, height = -1;
  for (size_t e = 0; e < entries; ++e) {
    const size_t at = ifd + 2 + 12 * e;
    if (at > b.size() || b.size() - at < 12) return std::nullopt;
    const uint32_t tag = u16(at), type = u16(at + 2);
    if (tag != 256 && tag != 257) continue;
    long long v;
    if (type == 3) v = u16(at + 8);       // SHORT, left-justified in the value field
    else if (type == 4) v = u32(at + 8);  // LONG
    else return std::nullopt;
    (tag == 256 ? width : height) = v;
  }
  if (width < 0 || height < 0) return std::nullopt;
  return ImageHeader{"tiff", width, height};
}

// PNM (P1..P6: PBM, PGM, PPM): ASCII width and height after the magic,
// separated by whitespace and '#' comments.
std::optional<ImageHeader> pnm(const std::string& b) {
  size_t i = 2;
  long long v[2] = {0, 0};
  for (long long& x : v) {
    for (;;) {
      while (i < b.size() && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n')) ++i;
      if (i < b.size() && b[i] == '#') {
        while (i < b.size() && b[i] != '\n') ++i;
        continue;
      }
      break;
    }
    size_t digits = 0;
    while (i < b.size() && b[i] >= '0' && b[i] <= '9') {
      if (++digits > 9) return std::nullopt;  // no PNM is a billion pixels wide
      x = x * 10 + (b[i++] - '0');
    }
    if (digits == 0) return std::nullopt;
  }
  if (i >= b.size()) return std::nullopt;  // header cut after the height
  return ImageHeader{b[1] == '5' || b[1] == '2' ? "pgm" : b[1] == '6' || b[1] == '3' ? "ppm" : "pbm", v[0], v[1]};
}

}  // namespace

std::optional<ImageHeader> read_image_header(const std::string& b) {
  if (b.size() >= 8 && b.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0) return png(b);
  if (b.size() >= 3 && uint8_t(b[0]) == 0xFF && uint8_t(b[1]) == 0xD8 && uint8_t(b[2]) == 0xFF) return jpeg(b);
  if (b.size() >= 6 && (b.compare(0, 6, "GIF87a") == 0 || b.compare(0, 6, "GIF89a") == 0)) return gif(b);
  if (b.size() >= 2 && b.compare(0, 2, "BM") == 0) return bmp(b);
  if (b.size() >= 16 && b.compare(0, 4, "RIFF") == 0 && b.compare(8, 4, "WEBP") == 0) return webp(b);
  if (b.size() >= 4 && (b.compare(0, 4, std::string("II*\0", 4)) == 0 || b.compare(0, 4, std::string("MM\0*", 4)) == 0)) return tiff(b);
  if (b.size() >= 3 && b[0] == 'P' && b[1] >= '1' && b[1] <= '6') return pnm(b);
  return std::nullopt;
}

}  // namespace adcorre::serve
