#include "adcorre/util/zip_integrity.h"
#include "adcorre/util/pickle_scan.h"

#include <map>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef ADCORRE_HAVE_ZLIB
#include <zlib.h>
#endif

#include <array>
#include <cerrno>
#include <cstring>
#include <string>

#include "adcorre/util/error.h"

namespace adcorre::fs {

namespace {

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50;
constexpr uint32_t kEnd64Sig = 0x06064b50, kLocator64Sig = 0x07064b50;

// Bounds-checked little-endian reads over the whole file.
struct Bytes {
  const uint8_t* p;
  size_t n;
  bool has(uint64_t off, uint64_t len) const { return off <= n && len <= n - off; }
  uint16_t u16(uint64_t off) const { return static_cast<uint16_t>(p[off] | p[off + 1] << 8); }
  uint32_t u32(uint64_t off) const { return u16(off) | static_cast<uint32_t>(u16(off + 2)) << 16; }
  uint64_t u64(uint64_t off) const { return u32(off) | static_cast<uint64_t>(u32(off + 4)) << 32; }
};

#ifdef ADCORRE_HAVE_ZLIB
uint32_t crc32_of(const uint8_t* p, uint64_t n) {
  uLong crc = crc32(0L, Z_NULL, 0);
  while (n > 0) {  // zlib takes a uInt length
    const uInt chunk = static_cast<uInt>(std::min<uint64_t>(n, 1u << 30));
    crc = crc32(crc, p, chunk);
    p += chunk;
    n -= chunk;
  }
  return static_cast<uint32_t>(crc);
}
// The CRC-32 of a deflated entry's uncompressed bytes, inflated in chunks;
// false when the stream is damaged or does not inflate to exactly `usize`.
bool inflated_crc32(const uint8_t* p, uint64_t csize, uint64_t usize, uint32_t& crc_out) {
  z_stream zs{};
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) return false;
  uLong crc = crc32(0L, Z_NULL, 0);
  uint64_t produced = 0;
  uint8_t out[1 << 15];
  zs.next_in = const_cast<Bytef*>(p);
  zs.avail_in = static_cast<uInt>(std::min<uint64_t>(csize, 1u << 30));
  int rc = Z_OK;
  while (rc == Z_OK) {
    zs.next_out = out;
    zs.avail_out = sizeof out;
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) break;
    const uInt got = static_cast<uInt>(sizeof out - zs.avail_out);
    produced += got;
    if (produced > usize) break;
    crc = crc32(crc, out, got);
    if (rc == Z_OK && got == 0 && zs.avail_in == 0) break;  // input ended before the stream did
  }
  inflateEnd(&zs);
  crc_out = static_cast<uint32_t>(crc);
  return rc == Z_STREAM_END && produced == usize;
}
#else
// Without zlib (the dependency-light build: LibTorch brings its own miniz but
// exports no CRC function): the same CRC-32 (IEEE 802.3, reflected, as zip
// and zlib), a byte at a time from a table. torch::save stores entries
// uncompressed, so that is all a model file or checkpoint needs.
uint32_t crc32_of(const uint8_t* p, uint64_t n) {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t crc = 0xFFFFFFFFu;
  for (uint64_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

#endif

// The zip64 extended-information extra field replaces the 32-bit fields that
// hold 0xFFFFFFFF, in the order: size, compressed size, local header offset.
bool apply_zip64_extra(const Bytes& b, uint64_t extra, uint16_t extra_len, uint64_t& usize, uint64_t& csize,
                       uint64_t& offset) {
  uint64_t pos = extra, end = extra + extra_len;
  while (pos + 4 <= end) {
    const uint16_t id = b.u16(pos), len = b.u16(pos + 2);
    if (pos + 4 + len > end) return false;
    if (id == 0x0001) {
      uint64_t q = pos + 4, qend = q + len;
      for (uint64_t* field : {&usize, &csize, &offset}) {
        if (*field != 0xFFFFFFFFu) continue;
        if (q + 8 > qend) return false;
        *field = b.u64(q);
        q += 8;
      }
      return true;
    }
    pos += 4 + len;
  }
  // No zip64 field: a value of 0xFFFFFFFF must then be the real one.
  return true;
}

std::string check(const Bytes& b) {
  if (b.n < 22) return "too short for a zip archive (" + std::to_string(b.n) + " bytes; truncated?)";
  // The end-of-central-directory record: within the last 22 + 65535 bytes.
  uint64_t eocd = b.n - 22;
  const uint64_t lowest = b.n > 22 + 65535 ? b.n - 22 - 65535 : 0;
  while (true) {
    if (b.u32(eocd) == kEndSig && eocd + 22 + b.u16(eocd + 20) == b.n) break;
    if (eocd == lowest) return "no end of central directory (truncated, or not a zip/LibTorch archive)";
    --eocd;
  }
  uint64_t entries = b.u16(eocd + 10), cd_size = b.u32(eocd + 12), cd_offset = b.u32(eocd + 16);
  if (b.u16(eocd + 4) != 0 || b.u16(eocd + 6) != 0) return "multi-disk zip archives are not supported";
  if (eocd >= 20 && b.u32(eocd - 20) == kLocator64Sig) {
    const uint64_t z64 = b.u64(eocd - 20 + 8);
    if (!b.has(z64, 56) || b.u32(z64) != kEnd64Sig) return "the zip64 end record is missing or damaged";
    entries = b.u64(z64 + 32);
    cd_size = b.u64(z64 + 40);
    cd_offset = b.u64(z64 + 48);
  }
  if (entries == 0) return "the archive has no entries";
  if (!b.has(cd_offset, cd_size)) return "the central directory lies outside the file (truncated?)";
  uint64_t pos = cd_offset;
  const uint64_t cd_end = cd_offset + cd_size;
  struct Pickle {
    std::string name;
    uint64_t data, size;
  };
  std::vector<Pickle> pickles;
  std::map<std::string, uint64_t> entry_sizes;
  for (uint64_t i = 0; i < entries; ++i) {
    const std::string where = "central directory entry " + std::to_string(i);
    if (pos + 46 > cd_end || b.u32(pos) != kCentralSig) return where + " is damaged";
    const uint16_t method = b.u16(pos + 10), name_len = b.u16(pos + 28), extra_len = b.u16(pos + 30),
                   comment_len = b.u16(pos + 32);
    const uint32_t crc = b.u32(pos + 16);
    uint64_t csize = b.u32(pos + 20), usize = b.u32(pos + 24), local = b.u32(pos + 42);
    if (pos + 46 + name_len + extra_len + comment_len > cd_end) return where + " runs past the directory";
    const std::string name(reinterpret_cast<const char*>(b.p + pos + 46), name_len);
    if (!apply_zip64_extra(b, pos + 46 + name_len, extra_len, usize, csize, local))
      return "entry '" + name + "' has a damaged zip64 field";
    if (method != 0 && method != 8)
      return "entry '" + name + "' uses compression method " + std::to_string(method) + " (not stored or deflated)";
    if (method == 0 && csize != usize) return "entry '" + name + "' has inconsistent sizes";
    if (!b.has(local, 30) || b.u32(local) != kLocalSig) return "entry '" + name + "': its local header is damaged";
    const uint16_t lname_len = b.u16(local + 26), lextra_len = b.u16(local + 28);
    if (lname_len != name_len || !b.has(local + 30, lname_len) ||
        std::memcmp(b.p + local + 30, name.data(), name_len) != 0)
      return "entry '" + name + "': its local header names another entry";
    const uint64_t data = local + 30 + lname_len + lextra_len;
    if (!b.has(data, csize) || data + csize > cd_offset) return "entry '" + name + "' lies outside the file (truncated?)";
    uint32_t actual = 0;
    if (method == 0) {
      actual = crc32_of(b.p + data, csize);
    } else {
#ifndef ADCORRE_HAVE_ZLIB
      // A build without zlib (the minimal one, where zlib is absent) checks
      // the bounds of a deflated entry but not its CRC-32. LibTorch's writer
      // deflates only the TorchScript entries (code/); data.pkl and every
      // tensor are stored, so those are still checked byte for byte.
      pos += 46 + name_len + extra_len + comment_len;
      continue;
#else
      if (!inflated_crc32(b.p + data, csize, usize, actual))
        return "entry '" + name + "' does not inflate to its recorded size (damaged bytes)";
#endif
    }
    if (actual != crc) return "entry '" + name + "' fails its CRC-32 check (damaged bytes)";
    // A pickle that passes its CRC may still be crafted: it is scanned after
    // the loop, when every entry's size is known (util/pickle_scan.h).
    if (method == 0 && name.size() >= 8 && name.compare(name.size() - 8, 8, "data.pkl") == 0)
      pickles.push_back({name, data, csize});
    entry_sizes[name] = usize;
    pos += 46 + name_len + extra_len + comment_len;
  }
  // Each pickle's memo indices and lengths, and the tensor storages it
  // declares against the sizes of its data/<key> entries.
  for (const Pickle& pk : pickles) {
    const std::string prefix = pk.name.substr(0, pk.name.size() - 8) + "data/";
    std::map<std::string, uint64_t> records;
    for (auto it = entry_sizes.lower_bound(prefix); it != entry_sizes.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it)
      records[it->first.substr(prefix.size())] = it->second;
    const std::string bad = pickle_scan_error(b.p + pk.data, pk.size, &records);
    if (!bad.empty()) return "entry '" + pk.name + "': " + bad;
  }
  return "";
}

}  // namespace

std::string zip_integrity_error(const uint8_t* bytes, size_t size) { return check(Bytes{bytes, size}); }

void verify_zip_integrity(const std::string& path, const std::string& what) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot open " + what + " " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(what + " " + path + " is not a regular file" + (S_ISDIR(st.st_mode) ? " (it is a folder)" : ""));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  std::string problem;
  if (size == 0) {
    problem = "the file is empty";
  } else {
    void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
      ::close(fd);
      throw Error("cannot read " + what + " " + path + ": " + std::strerror(errno));
    }
    problem = check(Bytes{static_cast<const uint8_t*>(map), size});
    ::munmap(map, size);
  }
  ::close(fd);
  if (!problem.empty()) throw Error(what + " " + path + " is corrupt: " + problem);
}

}  // namespace adcorre::fs
