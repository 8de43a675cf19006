// Checks of a pickle's raw bytes before LibTorch's unpickler reads it: memo
// indices, argument lengths, UTF-8 strings, declared tensor storages.
//
// Why: LibTorch 1.13's unpickler sizes its memo table from the index a PUT
// opcode names, so a data.pkl with valid CRC-32s and one LONG_BINPUT of 1.9e9
// made it allocate 31 GB (found by fuzz_model_file); on a machine with that
// much memory free the load would fill it before refusing the file. A pickle
// written by a pickler numbers its memo entries 0, 1, 2, ... and every entry
// costs at least two bytes, so an index at or above the pickle's size is
// never legitimate.
//
// pickle_scan_error(bytes, size)
//   requires: nothing (any bytes).
//   ensures:  walks the opcodes of protocols 0-5 and returns "" when every
//             memo index (PUT, BINPUT, LONG_BINPUT, GET, BINGET, LONG_BINGET)
//             is below `size` and every length-prefixed argument (strings,
//             bytes, longs) fits in what is left of the pickle; else a message
//             naming the opcode's offset and the index or length. (The
//             unpickler allocates an announced string length before reading
//             it: 1.6 GB for a 9 KB file.) Stops quietly at an opcode it does
//             not know or at a truncated fixed-size argument (the unpickler
//             refuses those itself). Never reads outside [bytes, bytes + size).
//
// With `records` (the sizes of the archive's data/<key> entries, by key), it
// also checks every tensor storage the pickle declares, LibTorch's persistent
// id ('storage', torch.<Type>Storage, key, location, numel): its key must name
// a record, and numel x the type's size must fit in it. LibTorch 1.13 builds
// the storage with the declared size over the record's bytes, so a larger
// declaration made reading the weights read past them (an out-of-bounds read,
// found by fuzz_model_file).
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

namespace adcorre::fs {

std::string pickle_scan_error(const uint8_t* bytes, size_t size, const std::map<std::string, uint64_t>* records = nullptr);

}  // namespace adcorre::fs
