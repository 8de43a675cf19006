// libFuzzer target: the Keras HDF5 reader behind `import-keras` and
// `train --init model.h5` (keras::read_keras_file: model_config, weight
// groups, float datasets). Any file: a KerasFile or an adcorre::Error.
// The HDF5 library itself is not instrumented; a crash inside it still stops
// the run and keeps the input. read_keras_file reads each file in a child
// process first and turns libhdf5's own crashes into errors, as users get
// it; to look for libhdf5's crashes themselves, call
// detail::read_keras_file_in_process instead (a 600 s run found one at once).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "adcorre/keras/keras_file.h"
#include "adcorre/util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/adcorre-fuzz-" + std::to_string(getpid()) + ".h5";
  if (std::FILE* f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  try {
    (void)adcorre::keras::read_keras_file(path);
  } catch (const adcorre::Error&) {
  }
  return 0;
}
