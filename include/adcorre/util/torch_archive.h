// Writing and reading LibTorch archives (model files, checkpoints) safely.
//
// save_archive_atomic(archive, path, what)
//   ensures: `path` is replaced by the archive in one rename, or, when writing
//            fails (disk full, quota, file-size limit, permissions), throws
//            adcorre::Error "cannot write <what> <path>: <reason>" with the
//            previous file untouched and the temporary file removed.
//   why:     LibTorch's file writer throws from its destructor when a write
//            fails, which terminates the process (exit 134); here LibTorch
//            writes through a callback that never fails and the errors are
//            collected and reported afterwards.
//
// load_archive_verified(archive, path, what)
//   ensures: the file's zip container passed verify_zip_integrity (every
//            entry's CRC-32) before LibTorch parses anything, then LibTorch
//            unpickled it once in a checking child process (util/
//            checking_child.h: a crash, a loop past the deadline or an
//            allocation past the cap there is this call's error, and every
//            tensor must lie inside its storage), and only then `archive`
//            holds it; any failure is an adcorre::Error naming `what` and the
//            path. A Keras HDF5 file or a folder gets an error that says so.
//            ADCORRE_ARCHIVE_IN_PROCESS skips the child,
//            ADCORRE_ARCHIVE_CHECK_SECONDS sets its deadline (default 60).
#pragma once
#include <string>

#include <torch/serialize/archive.h>

namespace adcorre::fs {

void save_archive_atomic(torch::serialize::OutputArchive& archive, const std::string& path, const std::string& what);

void load_archive_verified(torch::serialize::InputArchive& archive, const std::string& path, const std::string& what);

}  // namespace adcorre::fs
