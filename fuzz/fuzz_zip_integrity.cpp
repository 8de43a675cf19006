// libFuzzer target: the zip container check that guards every model-file and
// checkpoint load (fs::zip_integrity_error). Any input must give a verdict,
// never a crash, an out-of-bounds read or a hang. Seeds: real model files.
#include <cstddef>
#include <cstdint>

#include "adcorre/util/zip_integrity.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)adcorre::fs::zip_integrity_error(data, size);
  return 0;
}
