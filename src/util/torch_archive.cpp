#include "adcorre/util/torch_archive.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <torch/script.h>

#include "adcorre/util/checking_child.h"
#include "adcorre/util/error.h"
#include "adcorre/util/fs.h"
#include "adcorre/util/zip_integrity.h"

namespace adcorre::fs {

void save_archive_atomic(torch::serialize::OutputArchive& archive, const std::string& path, const std::string& what) {
  auto parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  const std::string tmp = temp_path_for(path);
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw Error("cannot write " + what + " " + path + ": " + std::strerror(errno));
  int err = 0;
  // Never report a short write to LibTorch (see the header): remember the
  // first error and swallow the rest of the bytes.
  auto sink = [&](const void* data, size_t n) -> size_t {
    if (err == 0 && n > 0 && std::fwrite(data, 1, n, f) != n) err = errno ? errno : EIO;
    return n;
  };
  std::string torch_error;
  try {
    archive.save_to(sink);
  } catch (const c10::Error& e) {
    torch_error = e.what_without_backtrace();
  }
  if (std::fflush(f) != 0 && err == 0) err = errno;
  if (err == 0 && ::fsync(fileno(f)) != 0) err = errno;
  if (std::fclose(f) != 0 && err == 0) err = errno;
  if (err != 0 || !torch_error.empty()) {
    std::remove(tmp.c_str());
    throw Error("cannot write " + what + " " + path + ": " + (err ? std::strerror(err) : torch_error) +
                (std::filesystem::exists(path) ? " (the previous file is unchanged)" : ""));
  }
  commit_temp(tmp, path);
}

static bool starts_with_hdf5_signature(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char sig[8] = {};
  in.read(sig, 8);
  return in.gcount() == 8 && std::memcmp(sig, "\x89HDF\r\n\x1a\n", 8) == 0;
}

// What the checking child runs: the unpickling that load_from() does, then
// every tensor's extent against its storage (a view past its storage would
// be read out of bounds when the weights are copied).
// Runs LibTorch's loading step `load`; its errors become adcorre::Error naming
// the file. LibTorch's unpickler also lets plain C++ exceptions out on a
// crafted pickle with valid CRC-32s (fuzz_model_file: std::out_of_range from
// a vector::at), with a message that names no file.
template <typename Load>
static void torch_load_or_refuse(const std::string& path, const std::string& what, Load load) {
  try {
    load();
  } catch (const c10::Error& e) {
    throw Error(what + " " + path + " is corrupt or not an adcorre archive (" +
                std::string(e.what_without_backtrace()).substr(0, 200) + ")");
  } catch (const std::exception& e) {
    throw Error(what + " " + path + " is corrupt or not an adcorre archive (" + std::string(e.what()).substr(0, 200) + ")");
  }
}

static void check_archive_in_this_process(const std::string& path, const std::string& what) {
  torch::jit::Module module;
  torch_load_or_refuse(path, what, [&] { module = torch::jit::load(path, torch::Device(torch::kCPU)); });
  auto check = [&](const std::string& name, const at::Tensor& t) {
    if (!t.defined() || t.numel() == 0) return;
    int64_t last = t.storage_offset();
    for (int64_t d = 0; d < t.dim(); ++d) {
      if (t.stride(d) < 0) throw Error(what + " " + path + " is corrupt: tensor '" + name + "' has a negative stride");
      last += (t.size(d) - 1) * t.stride(d);
    }
    const uint64_t needed = (static_cast<uint64_t>(last) + 1) * t.element_size();
    const uint64_t held = t.storage().nbytes();
    if (t.storage_offset() < 0 || needed > held)
      throw Error(what + " " + path + " is corrupt: tensor '" + name + "' spans " + std::to_string(needed) +
                  " bytes of a storage of " + std::to_string(held));
  };
  for (const auto& p : module.named_parameters(/*recurse=*/true)) check(p.name, p.value);
  for (const auto& b : module.named_buffers(/*recurse=*/true)) check(b.name, b.value);
}

void load_archive_verified(torch::serialize::InputArchive& archive, const std::string& path, const std::string& what) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw Error(what + " not found: " + path);
  if (std::filesystem::is_directory(path, ec))
    throw Error(what + " " + path + " is a folder, not a file" +
                (what == "model file" ? " (give the .pt file inside it; for a training run use its best.pt)" : ""));
  if (starts_with_hdf5_signature(path))
    throw Error(what + " " + path + " is a Keras HDF5 file, not an adcorre archive; convert it with `adcorre import-keras " +
                path + " --out model.pt`");
  verify_zip_integrity(path, what);
  // LibTorch's unpickler trusts what it reads: behind valid CRC-32s a crafted
  // data.pkl made it allocate 31 GB, read out of bounds and corrupt the heap
  // (fuzz_model_file; docs/robustness.md). pickle_scan refuses the patterns
  // found so far; the rest is contained by unpickling in a checking child
  // first, which also checks every tensor against its storage.
  util::ChildCheckOptions defaults;
  defaults.parser = "LibTorch's loader";
  std::error_code size_ec;
  const auto bytes = std::filesystem::file_size(path, size_ec);
  defaults.extra_address_space = (size_t(2) << 30) + (size_ec ? 0 : 8 * static_cast<size_t>(bytes));
  const auto options = util::child_check_options_from_env("ADCORRE_ARCHIVE", defaults);
  util::run_checked_in_child([&] { check_archive_in_this_process(path, what); }, what + " " + path, options);
  torch_load_or_refuse(path, what, [&] { archive.load_from(path); });
}

}  // namespace adcorre::fs
