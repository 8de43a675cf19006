// Small file-system helpers with the project's error conventions.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace adcorre::fs {

// Reads a whole file; throws adcorre::Error naming the path on failure.
std::string read_file(const std::string& path);

// Writes `data` to `path` atomically: a temp file beside it, fsync, rename.
// A reader never sees a half-written file; a crash leaves the old one.
void write_file_atomic(const std::string& path, const std::string& data);

// Returns "<path>.tmp.<pid>": the temp name write_file_atomic uses, for
// writers (torch::save) that need a path rather than bytes. First removes
// "<path>.tmp.<pid>" files left by processes that no longer exist (a run
// killed while writing), so they do not pile up.
std::string temp_path_for(const std::string& path);
// Renames tmp over path after fsyncing it (the second half of an atomic write).
void commit_temp(const std::string& tmp, const std::string& path);

// The directory of shared data (../shared next to the checkout) or the value of
// ADCORRE_SHARED when set. Empty when it does not exist.
std::string shared_dir();

// Lower-case copy.
std::string lower(std::string s);

}  // namespace adcorre::fs
