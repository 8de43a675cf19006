#include "adcorre/keras/hdf5.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include "adcorre/util/error.h"

#ifdef ADCORRE_HAVE_HDF5
#include <hdf5.h>
static_assert(sizeof(hid_t) == sizeof(int64_t), "hid_t is expected to be 64-bit (HDF5 >= 1.10)");
#endif

namespace adcorre::keras::hdf5 {

int64_t FloatArray::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

bool is_hdf5_file(const std::string& path) {
  // The signature sits at offset 0 or, after a user block, at 512, 1024, 2048, ...
  static const char sig[8] = {'\x89', 'H', 'D', 'F', '\r', '\n', '\x1a', '\n'};
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  char buf[8];
  for (std::streamoff off = 0; off < (std::streamoff(1) << 30); off = off ? off * 2 : 512) {
    in.seekg(off);
    if (!in.read(buf, 8)) return false;
    if (std::memcmp(buf, sig, 8) == 0) return true;
  }
  return false;
}

#ifdef ADCORRE_HAVE_HDF5

bool available() { return true; }

namespace {

// HDF5 prints its error stack by default; adcorre reports through Error instead.
void silence_hdf5() {
  static bool done = false;
  if (!done) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    done = true;
  }
}

// The most specific reason on HDF5's error stack ("" when empty).
std::string hdf5_reason() {
  std::string reason;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned n, const H5E_error2_t* e, void* data) -> herr_t {
        auto* r = static_cast<std::string*>(data);
        if (n == 0 && e->desc) *r = e->desc;
        return 0;
      },
      &reason);
  H5Eclear2(H5E_DEFAULT);
  return reason;
}

// Closes an HDF5 handle of any kind at scope exit.
class Handle {
 public:
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~Handle() {
    if (id_ >= 0) close_(id_);
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

std::string object_path(const std::string& p) { return p.empty() ? "/" : p; }

[[noreturn]] void fail(const std::string& file, const std::string& what) {
  std::string reason = hdf5_reason();
  throw Error("HDF5 file " + file + ": " + what + (reason.empty() ? "" : " (HDF5: " + reason + ")"));
}

// Opens `path` as an object (group or dataset) if it exists; -1 otherwise.
// Walks the components so a missing parent is "absent", not an error.
hid_t open_object(hid_t file, const std::string& path) {
  const std::string p = object_path(path);
  if (p == "/") return H5Oopen(file, "/", H5P_DEFAULT);
  std::string prefix;
  size_t start = p[0] == '/' ? 1 : 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    prefix += "/" + p.substr(start, end - start);
    if (H5Lexists(file, prefix.c_str(), H5P_DEFAULT) <= 0) {
      H5Eclear2(H5E_DEFAULT);
      return -1;
    }
    start = end + 1;
  }
  hid_t id = H5Oopen(file, p.c_str(), H5P_DEFAULT);
  if (id < 0) H5Eclear2(H5E_DEFAULT);
  return id;
}

bool object_is(hid_t file, const std::string& path, H5I_type_t type) {
  Handle obj(open_object(file, path), H5Oclose);
  return obj.ok() && H5Iget_type(obj.get()) == type;
}

std::vector<std::string> read_strings(hid_t attr, const std::string& file, const std::string& what) {
  Handle type(H5Aget_type(attr), H5Tclose);
  Handle space(H5Aget_space(attr), H5Sclose);
  if (!type.ok() || !space.ok()) fail(file, "cannot read attribute " + what);
  const hssize_t n = H5Sget_simple_extent_npoints(space.get());
  if (n < 0) fail(file, "cannot read the size of attribute " + what);
  if (H5Tget_class(type.get()) != H5T_STRING) {
    if (n == 0) return {};  // Keras writes "no weights" as an empty float array
    throw Error("HDF5 file " + file + ": attribute " + what + " is not a string");
  }
  std::vector<std::string> out;
  if (H5Tis_variable_str(type.get()) > 0) {
    Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mem.get(), H5T_VARIABLE);
    H5Tset_cset(mem.get(), H5Tget_cset(type.get()));
    std::vector<char*> buf(static_cast<size_t>(n), nullptr);
    if (n > 0 && H5Aread(attr, mem.get(), buf.data()) < 0) fail(file, "cannot read attribute " + what);
    for (auto* s : buf) out.emplace_back(s ? s : "");
#if H5_VERSION_GE(1, 12, 0)
    H5Treclaim(mem.get(), space.get(), H5P_DEFAULT, buf.data());
#else
    H5Dvlen_reclaim(mem.get(), space.get(), H5P_DEFAULT, buf.data());
#endif
  } else {
    const size_t size = H5Tget_size(type.get());
    if (size == 0) fail(file, "attribute " + what + " has a zero-size string type");
    Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mem.get(), size);
    H5Tset_strpad(mem.get(), H5T_STR_NULLPAD);
    std::vector<char> buf(static_cast<size_t>(n) * size);
    if (n > 0 && H5Aread(attr, mem.get(), buf.data()) < 0) fail(file, "cannot read attribute " + what);
    for (hssize_t i = 0; i < n; ++i) {
      const char* s = buf.data() + i * size;
      std::string v(s, strnlen(s, size));
      if (H5Tget_strpad(type.get()) == H5T_STR_SPACEPAD)
        while (!v.empty() && v.back() == ' ') v.pop_back();
      out.push_back(std::move(v));
    }
  }
  return out;
}

}  // namespace

Reader::Reader(const std::string& path) : path_(path) {
  silence_hdf5();
  if (!std::filesystem::exists(path)) throw Error("file not found: " + path);
  if (!is_hdf5_file(path)) throw Error("file " + path + " is not an HDF5 file (no HDF5 signature)");
  file_ = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file_ < 0) fail(path, "cannot open: truncated or corrupt");
}

Reader::~Reader() {
  if (file_ >= 0) H5Fclose(file_);
}

bool Reader::has_group(const std::string& group) const { return object_is(file_, group, H5I_GROUP); }
bool Reader::has_dataset(const std::string& dataset) const { return object_is(file_, dataset, H5I_DATASET); }

bool Reader::has_attribute(const std::string& object, const std::string& name) const {
  Handle obj(open_object(file_, object), H5Oclose);
  if (!obj.ok()) return false;
  const htri_t r = H5Aexists(obj.get(), name.c_str());
  if (r < 0) H5Eclear2(H5E_DEFAULT);
  return r > 0;
}

std::vector<std::string> Reader::children(const std::string& group) const {
  Handle g(H5Gopen2(file_, object_path(group).c_str(), H5P_DEFAULT), H5Gclose);
  if (!g.ok()) fail(path_, "no group '" + group + "'");
  H5G_info_t info;
  if (H5Gget_info(g.get(), &info) < 0) fail(path_, "cannot list group '" + group + "'");
  std::vector<std::string> names;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const ssize_t len = H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (len < 0) fail(path_, "cannot list group '" + group + "'");
    std::string name(static_cast<size_t>(len) + 1, '\0');
    H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(), H5P_DEFAULT);
    name.resize(static_cast<size_t>(len));
    names.push_back(std::move(name));
  }
  return names;
}

std::optional<std::string> Reader::string_attribute(const std::string& object, const std::string& name) const {
  if (!has_attribute(object, name)) return std::nullopt;
  const std::string what = "'" + name + "' of '" + object_path(object) + "'";
  Handle attr(H5Aopen_by_name(file_, object_path(object).c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (!attr.ok()) fail(path_, "cannot open attribute " + what);
  auto values = read_strings(attr.get(), path_, what);
  if (values.size() != 1) throw Error("HDF5 file " + path_ + ": attribute " + what + " is not a single string");
  return values[0];
}

std::optional<std::vector<std::string>> Reader::string_list_attribute(const std::string& object,
                                                                      const std::string& name) const {
  auto read_one = [&](const std::string& n) {
    const std::string what = "'" + n + "' of '" + object_path(object) + "'";
    Handle attr(H5Aopen_by_name(file_, object_path(object).c_str(), n.c_str(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
    if (!attr.ok()) fail(path_, "cannot open attribute " + what);
    return read_strings(attr.get(), path_, what);
  };
  if (has_attribute(object, name)) return read_one(name);
  // Keras splits attributes over the 64 KiB object-header limit into name0, name1, ...
  if (!has_attribute(object, name + "0")) return std::nullopt;
  std::vector<std::string> all;
  for (int i = 0; has_attribute(object, name + std::to_string(i)); ++i) {
    auto part = read_one(name + std::to_string(i));
    all.insert(all.end(), part.begin(), part.end());
  }
  return all;
}

FloatArray Reader::read_floats(const std::string& dataset) const {
  if (!has_dataset(dataset)) throw Error("HDF5 file " + path_ + ": dataset '" + dataset + "' is missing");
  Handle ds(H5Dopen2(file_, dataset.c_str(), H5P_DEFAULT), H5Dclose);
  if (!ds.ok()) fail(path_, "cannot open dataset '" + dataset + "'");
  Handle type(H5Dget_type(ds.get()), H5Tclose);
  const H5T_class_t cls = H5Tget_class(type.get());
  if (cls != H5T_FLOAT && cls != H5T_INTEGER)
    throw Error("HDF5 file " + path_ + ": dataset '" + dataset + "' is not numeric");
  Handle space(H5Dget_space(ds.get()), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0) fail(path_, "cannot read the shape of dataset '" + dataset + "'");
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  FloatArray out;
  for (auto d : dims) out.shape.push_back(static_cast<int64_t>(d));
  const int64_t n = out.numel();
  if (n > (int64_t(1) << 31)) throw Error("HDF5 file " + path_ + ": dataset '" + dataset + "' is implausibly large");
  out.data.resize(static_cast<size_t>(n));
  if (n > 0 && H5Dread(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data.data()) < 0)
    fail(path_, "cannot read dataset '" + dataset + "' (truncated or corrupt?)");
  return out;
}

// ---- Writer ----

Writer::Writer(const std::string& path) : path_(path) {
  silence_hdf5();
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_LATEST);
  file_ = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get());
  if (file_ < 0) fail(path, "cannot create");
}

Writer::~Writer() {
  if (file_ >= 0) H5Fclose(file_);
}

void Writer::close() {
  if (file_ < 0) return;
  const herr_t r = H5Fclose(file_);
  file_ = -1;
  if (r < 0) fail(path_, "cannot close (disk full?)");
}

void Writer::create_group(const std::string& group) {
  if (object_is(file_, group, H5I_GROUP)) return;
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  Handle g(H5Gcreate2(file_, group.c_str(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
  if (!g.ok()) fail(path_, "cannot create group '" + group + "'");
}

void Writer::write_floats(const std::string& dataset, const std::vector<int64_t>& shape, const float* data) {
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  Handle space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  Handle ds(H5Dcreate2(file_, dataset.c_str(), H5T_IEEE_F32LE, space.get(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT),
            H5Dclose);
  if (!ds.ok()) fail(path_, "cannot create dataset '" + dataset + "'");
  if (H5Dwrite(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    fail(path_, "cannot write dataset '" + dataset + "'");
}

void Writer::write_string_attribute(const std::string& object, const std::string& name, const std::string& value) {
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attr(H5Acreate_by_name(file_, object_path(object).c_str(), name.c_str(), type.get(), space.get(),
                                H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
              H5Aclose);
  if (!attr.ok()) fail(path_, "cannot create attribute '" + name + "' of '" + object_path(object) + "'");
  const char* s = value.c_str();
  if (H5Awrite(attr.get(), type.get(), &s) < 0) fail(path_, "cannot write attribute '" + name + "'");
}

void Writer::write_string_list_attribute(const std::string& object, const std::string& name,
                                         const std::vector<std::string>& values) {
  const hsize_t n = values.size();
  if (values.empty()) {
    Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose);
    Handle attr(H5Acreate_by_name(file_, object_path(object).c_str(), name.c_str(), H5T_IEEE_F64LE, space.get(),
                                  H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                H5Aclose);
    if (!attr.ok()) fail(path_, "cannot create attribute '" + name + "' of '" + object_path(object) + "'");
    return;
  }
  size_t size = 1;
  for (auto& v : values) size = std::max(size, v.size());
  std::vector<char> buf(values.size() * size, '\0');
  for (size_t i = 0; i < values.size(); ++i) std::memcpy(buf.data() + i * size, values[i].data(), values[i].size());
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), size);
  H5Tset_strpad(type.get(), H5T_STR_NULLPAD);
  Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  Handle attr(H5Acreate_by_name(file_, object_path(object).c_str(), name.c_str(), type.get(), space.get(),
                                H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
              H5Aclose);
  if (!attr.ok()) fail(path_, "cannot create attribute '" + name + "' of '" + object_path(object) + "'");
  if (H5Awrite(attr.get(), type.get(), buf.data()) < 0) fail(path_, "cannot write attribute '" + name + "'");
}

#else  // no HDF5: every entry point says so clearly.

bool available() { return false; }
[[noreturn]] static void unavailable() {
  throw Error("this adcorre was built without HDF5 (install libhdf5-dev and re-run cmake) so it cannot read Keras files");
}
Reader::Reader(const std::string& path) : path_(path) { unavailable(); }
Reader::~Reader() = default;
bool Reader::has_group(const std::string&) const { unavailable(); }
bool Reader::has_dataset(const std::string&) const { unavailable(); }
bool Reader::has_attribute(const std::string&, const std::string&) const { unavailable(); }
std::vector<std::string> Reader::children(const std::string&) const { unavailable(); }
std::optional<std::string> Reader::string_attribute(const std::string&, const std::string&) const { unavailable(); }
std::optional<std::vector<std::string>> Reader::string_list_attribute(const std::string&, const std::string&) const {
  unavailable();
}
FloatArray Reader::read_floats(const std::string&) const { unavailable(); }
Writer::Writer(const std::string& path) : path_(path) { unavailable(); }
Writer::~Writer() = default;
void Writer::create_group(const std::string&) { unavailable(); }
void Writer::write_floats(const std::string&, const std::vector<int64_t>&, const float*) { unavailable(); }
void Writer::write_string_attribute(const std::string&, const std::string&, const std::string&) { unavailable(); }
void Writer::write_string_list_attribute(const std::string&, const std::string&, const std::vector<std::string>&) {
  unavailable();
}
void Writer::close() {}

#endif

}  // namespace adcorre::keras::hdf5
