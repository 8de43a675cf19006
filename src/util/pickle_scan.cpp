#include "adcorre/util/pickle_scan.h"

#include <cstring>

namespace adcorre::fs {

namespace {

uint64_t little_endian(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

std::string pickle_memo_error(const uint8_t* p, size_t size) {
  size_t at = 0;
  // Skips the n-byte argument; false when it runs past the end.
  auto skip = [&](uint64_t n) {
    if (n > size - at) return false;
    at += static_cast<size_t>(n);
    return true;
  };
  // Reads an n-byte little-endian integer argument.
  auto read = [&](int n, uint64_t* v) {
    if (static_cast<size_t>(n) > size - at) return false;
    *v = little_endian(p + at, n);
    at += static_cast<size_t>(n);
    return true;
  };
  // A newline-terminated text argument; false when there is no newline.
  auto line = [&](std::string* text) {
    const void* nl = std::memchr(p + at, '\n', size - at);
    if (!nl) return false;
    const size_t end = static_cast<size_t>(static_cast<const uint8_t*>(nl) - p);
    if (text) text->assign(reinterpret_cast<const char*>(p + at), end - at);
    at = end + 1;
    return true;
  };
  // A length-prefixed argument (a string, bytes, a long) that runs past the
  // end: the unpickler allocates the announced length before it finds out
  // (1.6 GB for a 9 KB file, found by fuzz_model_file).
  auto too_long = [&](size_t offset, uint64_t n) -> std::string {
    if (n <= size - at) return "";
    return "pickle opcode at byte " + std::to_string(offset) + " announces " + std::to_string(n) + " bytes of data, more than the " +
           std::to_string(size - at) + " left in this " + std::to_string(size) + "-byte pickle";
  };
  auto check = [&](const char* op, size_t offset, uint64_t index) -> std::string {
    if (index < size) return "";
    return std::string("pickle opcode ") + op + " at byte " + std::to_string(offset) + " names memo entry " +
           std::to_string(index) + ", beyond any this " + std::to_string(size) + "-byte pickle can hold";
  };
  while (at < size) {
    const size_t offset = at;
    const uint8_t op = p[at++];
    uint64_t v = 0;
    std::string text;
    switch (op) {
      // no argument
      case '(': case '.': case '0': case '1': case '2': case 'N': case ')': case ']': case '}': case 'R':
      case 'b': case 'a': case 'e': case 's': case 'u': case 't': case 'l': case 'd': case 'o': case 'Q':
      case 0x85: case 0x86: case 0x87: case 0x88: case 0x89: case 0x81: case 0x93: case 0x94: case 0x8f:
      case 0x90: case 0x91: case 0x92: case 0x97: case 0x98:
        if (op == '.') return "";  // STOP: what follows is not read by the unpickler
        break;
      // memo indices
      case 'q': case 'h':
        if (!read(1, &v)) return "";
        break;  // one byte: always below 256, and a pickle that uses it is longer than that or fails anyway
      case 'r': case 'j':
        if (!read(4, &v)) return "";
        if (auto e = check(op == 'r' ? "LONG_BINPUT" : "LONG_BINGET", offset, v); !e.empty()) return e;
        break;
      case 'p': case 'g':
        if (!line(&text)) return "";
        try {
          v = std::stoull(text);
        } catch (...) {
          return "";  // not a number: the unpickler refuses it
        }
        if (auto e = check(op == 'p' ? "PUT" : "GET", offset, v); !e.empty()) return e;
        break;
      // fixed-size arguments
      case 'K': case 0x80: case 0x82:
        if (!skip(1)) return "";
        break;
      case 'M': case 0x83:
        if (!skip(2)) return "";
        break;
      case 'J': case 0x84:
        if (!skip(4)) return "";
        break;
      case 'G': case 0x95:
        if (!skip(8)) return "";
        break;
      // length-prefixed arguments
      case 'U': case 'C': case 0x8c: case 0x8a:
      case 'T': case 'B': case 'X': case 0x8b:
      case 0x8d: case 0x8e: case 0x96: {
        const int width = (op == 'U' || op == 'C' || op == 0x8c || op == 0x8a) ? 1 : (op == 0x8d || op == 0x8e || op == 0x96) ? 8 : 4;
        if (!read(width, &v)) return "";
        if (auto e = too_long(offset, v); !e.empty()) return e;
        skip(v);
        break;
      }
      // newline-terminated arguments
      case 'I': case 'L': case 'F': case 'S': case 'V': case 'P':
        if (!line(nullptr)) return "";
        break;
      case 'c': case 'i':
        if (!line(nullptr) || !line(nullptr)) return "";
        break;
      default:
        return "";  // an opcode this scan does not know: left to the unpickler
    }
  }
  return "";
}

}  // namespace adcorre::fs
