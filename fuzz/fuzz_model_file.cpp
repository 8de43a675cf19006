// libFuzzer target: the model-file loader BEHIND the container check.
//
// fuzz_zip_integrity covers the CRC-32 check that stops damaged files; this
// target covers what a crafted file with valid CRC-32s reaches: LibTorch's
// unpickler and TorchScript importer, then adcorre's config and weight checks
// (models::load_model). The input replaces one entry of a real model file
// (fer-tiny, fixed seed) and the archive is rewritten with correct CRC-32s.
// Input: byte 0 chooses the entry (0-127: data.pkl, the pickle whose flipped
// byte crashed every loader; else entry byte0 % count), the rest is its
// content. Every input must load or give adcorre::Error; any other exception
// (a LibTorch message without the file name) or a crash is a finding.
//
// load_model unpickles the file in a checking child first
// (util/checking_child.h), so a crash inside LibTorch's unpickler ends that
// child and comes back as an adcorre::Error: this target checks the product's
// path. To hunt the unpickler's own defects (what the child contains), run it
// with ADCORRE_ARCHIVE_IN_PROCESS=1.
//
// Links against libadcorre.so (LibTorch and OpenCV through it); only this
// file is instrumented, so coverage guidance is weak and the search is mostly
// random mutation of a valid pickle, as a hostile user's would be.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include <caffe2/serialize/inline_container.h>
#include <torch/torch.h>
#include <unistd.h>

#include "adcorre/models/fer_model.h"
#include "adcorre/models/model_file.h"
#include "adcorre/util/error.h"
#include "adcorre/util/fs.h"

namespace {

struct Entries {
  std::vector<std::pair<std::string, std::string>> records;  // name, bytes
  size_t pickle = 0;                                         // index of data.pkl
};

const Entries& base() {
  static const Entries e = [] {
    Entries out;
    torch::manual_seed(1);
    auto cfg = adcorre::models::preset("fer-tiny");
    auto net = adcorre::models::create_model(cfg);
    const std::string path = "/tmp/fuzz_model_file.base." + std::to_string(getpid()) + ".pt";
    adcorre::models::save_model(path, cfg, *net);
    caffe2::serialize::PyTorchStreamReader reader(path);
    for (const auto& name : reader.getAllRecords()) {
      if (name == "version" || name == ".data/version") continue;  // the writer adds its own
      auto [ptr, n] = reader.getRecord(name);
      if (name == "data.pkl") out.pickle = out.records.size();
      out.records.emplace_back(name, std::string(static_cast<const char*>(ptr.get()), n));
    }
    std::remove(path.c_str());
    return out;
  }();
  return e;
}

}  // namespace

// ADCORRE_FUZZ_WRITE_SEED=FILE: write the base file's own data.pkl as a seed
// input (selector byte 0) to FILE and exit (scripts/fuzz.sh does this).
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* seed = std::getenv("ADCORRE_FUZZ_WRITE_SEED")) {
    const Entries& e = base();
    adcorre::fs::write_file_atomic(seed, std::string(1, '\0') + e.records[e.pickle].second);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const Entries& e = base();
  const size_t which = data[0] < 128 ? e.pickle : data[0] % e.records.size();
  std::string file;
  {
    caffe2::serialize::PyTorchStreamWriter writer([&file](const void* p, size_t n) {
      file.append(static_cast<const char*>(p), n);
      return n;
    });
    for (size_t i = 0; i < e.records.size(); ++i) {
      const std::string& bytes =
          i == which ? std::string(reinterpret_cast<const char*>(data) + 1, size - 1) : e.records[i].second;
      writer.writeRecord(e.records[i].first, bytes.data(), bytes.size());
    }
    writer.writeEndOfFile();
  }
  static const std::string path = "/tmp/fuzz_model_file." + std::to_string(getpid()) + ".pt";
  adcorre::fs::write_file_atomic(path, file);
  try {
    (void)adcorre::models::load_model(path, "cpu");
  } catch (const adcorre::Error&) {
    // the expected outcome for a damaged file: a clear error naming it
  } catch (const std::exception& other) {
    std::fprintf(stderr, "load_model let a non-adcorre exception out: %s\n", other.what());
    std::abort();
  }
  return 0;
}
