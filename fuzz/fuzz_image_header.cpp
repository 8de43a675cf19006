// libFuzzer target: the image-header parser that caps decoded sizes before
// OpenCV allocates pixels (predict, eval, serve). Any bytes: an answer or
// nothing, never a read past the input.
#include <cstddef>
#include <cstdint>
#include <string>

#include "adcorre/serve/image_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  auto h = adcorre::serve::read_image_header(bytes);
  if (h && (h->width < 0 || h->height < 0)) __builtin_trap();  // sizes are never negative
  return 0;
}
