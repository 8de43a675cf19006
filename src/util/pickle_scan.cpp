#include "adcorre/util/pickle_scan.h"

#include <cstring>
#include <map>
#include <vector>

namespace adcorre::fs {

namespace {

uint64_t little_endian(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Bytes per element of LibTorch's storage classes ("torch\nFloatStorage"); 0: unknown.
uint64_t storage_item_size(const std::string& global) {
  static const std::map<std::string, uint64_t> sizes = {
      {"torch\nFloatStorage", 4},  {"torch\nDoubleStorage", 8}, {"torch\nHalfStorage", 2},
      {"torch\nBFloat16Storage", 2}, {"torch\nLongStorage", 8},  {"torch\nIntStorage", 4},
      {"torch\nShortStorage", 2},  {"torch\nCharStorage", 1},   {"torch\nByteStorage", 1},
      {"torch\nBoolStorage", 1},   {"torch\nComplexFloatStorage", 8}, {"torch\nComplexDoubleStorage", 16}};
  auto it = sizes.find(global);
  return it == sizes.end() ? 0 : it->second;
}

// Whether [p, p + n) is well-formed UTF-8 (what every pickler writes for a
// unicode string; LibTorch 1.13's unpickler takes any bytes, and a crafted
// name of invalid UTF-8 was followed by heap corruption: fuzz_model_file).
bool valid_utf8(const uint8_t* p, size_t n) {
  size_t i = 0;
  while (i < n) {
    const uint8_t c = p[i];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (len == 0 || len > n - i) return false;
    if (len == 2 && c < 0xc2) return false;  // overlong
    for (size_t k = 1; k < len; ++k)
      if ((p[i + k] & 0xc0) != 0x80) return false;
    if (len == 3) {
      const uint32_t cp = ((c & 0x0fu) << 12) | ((p[i + 1] & 0x3fu) << 6) | (p[i + 2] & 0x3fu);
      if (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    }
    if (len == 4) {
      const uint32_t cp = ((c & 0x07u) << 18) | ((p[i + 1] & 0x3fu) << 12) | ((p[i + 2] & 0x3fu) << 6) | (p[i + 3] & 0x3fu);
      if (cp < 0x10000 || cp > 0x10ffff) return false;
    }
    i += len;
  }
  return true;
}

// The values the scan follows: strings, globals and integers, in the order
// they were pushed (what a persistent id's tuple is built from).
struct Atom {
  enum Kind { kString, kGlobal, kInt, kOther } kind = kOther;
  std::string text;
  uint64_t value = 0;
};

}  // namespace

std::string pickle_scan_error(const uint8_t* p, size_t size, const std::map<std::string, uint64_t>* records) {
  std::vector<Atom> recent;  // the last few atoms (a persistent id needs five)
  std::map<uint64_t, Atom> memo;
  auto push = [&](Atom a) {
    recent.push_back(std::move(a));
    if (recent.size() > 8) recent.erase(recent.begin());
  };
  auto last = [&]() { return recent.empty() ? Atom{} : recent.back(); };
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
        if (op == 'Q' && records && recent.size() >= 5) {
          // ('storage', torch.<Type>Storage, key, location, numel) BINPERSID
          const Atom* id = &recent[recent.size() - 5];
          if (id[0].kind == Atom::kString && id[0].text == "storage" && id[1].kind == Atom::kGlobal &&
              id[2].kind == Atom::kString && id[4].kind == Atom::kInt) {
            const uint64_t item = storage_item_size(id[1].text);
            auto rec = records->find(id[2].text);
            if (rec == records->end() && id[4].value > 0)
              return "pickle at byte " + std::to_string(offset) + " names tensor data '" + id[2].text + "', which the archive does not hold";
            uint64_t need = 0;
            if (rec != records->end() && item > 0 && (__builtin_mul_overflow(id[4].value, item, &need) || need > rec->second))
              return "pickle at byte " + std::to_string(offset) + " declares " + std::to_string(id[4].value) + " elements for tensor data '" +
                     id[2].text + "', more than its " + std::to_string(rec->second) + " bytes hold";
          }
        }
        // Every other opcode here leaves a value the scan does not follow; MARK
        // and TUPLE do not (a persistent id is MARK, five values, TUPLE).
        if (op != '(' && op != 't') push(Atom{});
        break;
      // memo indices
      case 'q': case 'h':
        if (!read(1, &v)) return "";
        // one byte: always below 256, harmless whatever the pickle's size
        if (op == 'q') memo[v] = last();
        else push(memo.count(v) ? memo[v] : Atom{});
        break;
      case 'r': case 'j':
        if (!read(4, &v)) return "";
        if (auto e = check(op == 'r' ? "LONG_BINPUT" : "LONG_BINGET", offset, v); !e.empty()) return e;
        if (op == 'r') memo[v] = last();
        else push(memo.count(v) ? memo[v] : Atom{});
        break;
      case 'p': case 'g':
        if (!line(&text)) return "";
        try {
          v = std::stoull(text);
        } catch (...) {
          return "";  // not a number: the unpickler refuses it
        }
        if (auto e = check(op == 'p' ? "PUT" : "GET", offset, v); !e.empty()) return e;
        if (op == 'p') memo[v] = last();
        else push(memo.count(v) ? memo[v] : Atom{});
        break;
      // fixed-size arguments
      case 0x80:  // PROTO
        if (!skip(1)) return "";
        break;
      case 'K': case 'M': case 'J':  // BININT1, BININT2, BININT (the numel of a storage)
        if (!read(op == 'K' ? 1 : op == 'M' ? 2 : 4, &v)) return "";
        push(Atom{Atom::kInt, "", op == 'J' ? static_cast<uint64_t>(static_cast<int64_t>(static_cast<int32_t>(v))) : v});
        break;
      case 0x82: case 0x83: case 0x84:
        if (!skip(op == 0x82 ? 1 : op == 0x83 ? 2 : 4)) return "";
        push(Atom{});
        break;
      case 'G': case 0x95:
        if (!skip(8)) return "";
        if (op == 'G') push(Atom{});
        break;
      // length-prefixed arguments
      case 'U': case 'C': case 0x8c: case 0x8a:
      case 'T': case 'B': case 'X': case 0x8b:
      case 0x8d: case 0x8e: case 0x96: {
        const int width = (op == 'U' || op == 'C' || op == 0x8c || op == 0x8a) ? 1 : (op == 0x8d || op == 0x8e || op == 0x96) ? 8 : 4;
        if (!read(width, &v)) return "";
        if (auto e = too_long(offset, v); !e.empty()) return e;
        const bool text = op == 'X' || op == 0x8c || op == 0x8d;
        if (text && !valid_utf8(p + at, static_cast<size_t>(v)))
          return "pickle opcode at byte " + std::to_string(offset) + " holds a unicode string that is not valid UTF-8";
        if (text) push(Atom{Atom::kString, std::string(reinterpret_cast<const char*>(p + at), static_cast<size_t>(v)), 0});
        else if (op == 0x8a && v <= 8) push(Atom{Atom::kInt, "", little_endian(p + at, static_cast<int>(v))});  // LONG1
        else push(Atom{});
        skip(v);
        break;
      }
      // newline-terminated arguments
      case 'I': case 'L': case 'F': case 'S': case 'V': case 'P':
        if (!line(nullptr)) return "";
        push(Atom{});
        break;
      case 'c': case 'i': {
        std::string module, name;
        if (!line(&module) || !line(&name)) return "";
        push(op == 'c' ? Atom{Atom::kGlobal, module + "\n" + name, 0} : Atom{});
        break;
      }
      default:
        return "";  // an opcode this scan does not know: left to the unpickler
    }
  }
  return "";
}

}  // namespace adcorre::fs
