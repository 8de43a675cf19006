// libFuzzer target: the FER-2013 CSV reader (and the CSV reader under every
// label file). Any file: a dataset or an adcorre::Error, never a crash.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "adcorre/data/readers.h"
#include "adcorre/util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/adcorre-fuzz-" + std::to_string(getpid()) + ".csv";
  if (std::FILE* f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  for (const char* split : {"", "train"}) {
    try {
      (void)adcorre::data::read_fer2013_csv(path, split);
    } catch (const adcorre::Error&) {
    }
  }
  return 0;
}
