// A small, safe layer over the HDF5 C API: exactly what Keras files need.
//
// Reading: string attributes (scalar, fixed or variable length; arrays of
// fixed-length strings; Keras' chunked attributes "name0", "name1", ...),
// float datasets of any float/int storage type (converted to float32), and
// links of a group. Writing (for tests and export): groups, float32
// datasets, string attributes in the layouts Keras writes.
//
// Every failure throws adcorre::Error naming the file, the object and, when
// the library said why, HDF5's own reason. HDF5's automatic error printing is
// switched off. Handles are plain integers here so HDF5's headers stay out of
// every other translation unit. Not thread-safe (Debian's serial libhdf5).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace adcorre::keras::hdf5 {

// True when the library was built with HDF5 (ADCORRE_HAVE_HDF5).
bool available();

// True when `path` exists and carries the HDF5 signature. Never throws.
bool is_hdf5_file(const std::string& path);

struct FloatArray {
  std::vector<int64_t> shape;
  std::vector<float> data;  // row-major (C order), as stored
  int64_t numel() const;
};

// A file opened read-only; objects are addressed by '/'-separated paths
// relative to the root ("" or "/" is the root).
class Reader {
 public:
  // Throws adcorre::Error for a missing, non-HDF5, truncated or corrupt file.
  explicit Reader(const std::string& path);
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  const std::string& path() const { return path_; }
  bool has_group(const std::string& group) const;
  bool has_dataset(const std::string& dataset) const;
  bool has_attribute(const std::string& object, const std::string& name) const;
  // Child link names of a group, in the file's (name) order.
  std::vector<std::string> children(const std::string& group) const;

  // A scalar string attribute, or nullopt when absent.
  std::optional<std::string> string_attribute(const std::string& object, const std::string& name) const;
  // A 1-D string-array attribute (Keras' layer_names / weight_names), joining
  // Keras' chunks name0, name1, ... when the whole one is absent. An empty
  // numeric array (what Keras writes for "no weights") gives {}. nullopt when
  // absent.
  std::optional<std::vector<std::string>> string_list_attribute(const std::string& object,
                                                                const std::string& name) const;
  // A dataset converted to float32.
  FloatArray read_floats(const std::string& dataset) const;

 private:
  std::string path_;
  int64_t file_ = -1;
};

// A new file (replacing any existing one), written in HDF5's 1.8 format so
// attributes may exceed 64 KiB (Keras' model_config of a large model).
class Writer {
 public:
  explicit Writer(const std::string& path);
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Creates the group and any missing parents.
  void create_group(const std::string& group);
  // Writes a float32 dataset (parents created as needed).
  void write_floats(const std::string& dataset, const std::vector<int64_t>& shape, const float* data);
  // A scalar variable-length UTF-8 string (how h5py stores a Python str).
  void write_string_attribute(const std::string& object, const std::string& name, const std::string& value);
  // A 1-D array of fixed-length strings (how h5py stores a list of bytes); an
  // empty list is written as Keras does: an empty float64 array.
  void write_string_list_attribute(const std::string& object, const std::string& name,
                                   const std::vector<std::string>& values);
  // Flushes and closes; the destructor closes too but cannot report errors.
  void close();

 private:
  std::string path_;
  int64_t file_ = -1;
};

}  // namespace adcorre::keras::hdf5
