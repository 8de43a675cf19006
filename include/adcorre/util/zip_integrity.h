// Integrity of a zip container (the format of LibTorch's archives: model
// files and training checkpoints) checked on the raw bytes, before anything
// is parsed.
//
// Why: LibTorch 1.13 does not verify the CRC-32 of the entries it reads, and
// it unpickles data.pkl before adcorre can check its own checksum, so one
// flipped byte there crashed every loader (SIGSEGV, "free(): invalid next
// size"). Verifying the container first turns any such damage into an error.
//
// verify_zip_integrity(path, what)
//   requires: nothing (any path, any bytes).
//   ensures:  returns normally only when the file is a complete zip archive
//             whose central directory is consistent with its local headers,
//             whose entries (stored or deflated) lie inside the file, and
//             whose every entry's bytes match their CRC-32. Otherwise throws
//             adcorre::Error "<what> <path> is corrupt: ..." naming the entry
//             or the structure that is wrong. Never crashes, reads each byte
//             at most twice, and needs no memory beyond one mapping.
//   zip_integrity_error(bytes, size): the same check on bytes in memory;
//             returns "" when intact, else what is wrong (for fuzzing/tests).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace adcorre::fs {

void verify_zip_integrity(const std::string& path, const std::string& what);

std::string zip_integrity_error(const uint8_t* bytes, size_t size);

}  // namespace adcorre::fs
