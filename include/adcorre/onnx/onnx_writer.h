// OnnxGraph: a tiny builder for an ONNX model (one graph of float tensors)
// that serialises straight to the protobuf wire format, so adcorre needs no
// protobuf or libonnx to write ONNX files. Only what the exporter uses is
// here: float initializers, nodes with int / ints / float attributes, one
// float input and outputs whose dimensions are fixed or named ("N"), and
// model metadata (key/value strings).
//
// Requires: node inputs name an input, an initializer or an earlier node's
// output (the builder does not check the graph; onnx.checker and the test do).
// Ensures: serialize() returns a complete ModelProto (ir_version 6, the
// default domain at the opset asked for) that ONNX readers (OpenCV DNN,
// onnxruntime, python onnx) parse. Names made by the builder are unique.
// No torch in this header.
#pragma once
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace adcorre::onnx {

// One node attribute: an int, a list of ints or a float.
struct Attr {
  enum class Kind { Int, Ints, Float };
  std::string name;
  Kind kind = Kind::Int;
  int64_t i = 0;
  std::vector<int64_t> ints;
  float f = 0;
};
Attr attr(const std::string& name, int64_t value);
Attr attr(const std::string& name, std::vector<int64_t> values);
Attr attr_float(const std::string& name, float value);

// A tensor dimension: a fixed size, or a named (dynamic) one such as "N".
struct Dim {
  int64_t value = 0;
  std::string param;  // non-empty: dynamic, this is its name
};

class OnnxGraph {
 public:
  explicit OnnxGraph(std::string name) : name_(std::move(name)) {}

  // A float initializer (a weight) of shape `dims`; values.size() must equal
  // the product of dims. Returns its name: `hint`, made unique.
  std::string constant(const std::string& hint, std::vector<int64_t> dims, std::vector<float> values);
  // A node; returns the name of its (single) output: `output` when given,
  // else a fresh name derived from op.
  std::string node(const std::string& op, std::vector<std::string> inputs, std::vector<Attr> attrs = {},
                   const std::string& output = "");
  void add_input(const std::string& name, std::vector<Dim> dims);
  void add_output(const std::string& name, std::vector<Dim> dims);
  void add_metadata(const std::string& key, const std::string& value);

  std::string serialize(int64_t opset, const std::string& producer_version) const;

  size_t node_count() const { return nodes_.size(); }

 private:
  struct Tensor { std::string name; std::vector<int64_t> dims; std::vector<float> values; };
  struct Node { std::string op, name; std::vector<std::string> inputs; std::string output; std::vector<Attr> attrs; };
  struct Value { std::string name; std::vector<Dim> dims; };
  std::string unique(const std::string& hint);

  std::string name_;
  std::vector<Tensor> constants_;
  std::vector<Node> nodes_;
  std::vector<Value> inputs_, outputs_;
  std::vector<std::pair<std::string, std::string>> metadata_;
  std::set<std::string> used_;
};

}  // namespace adcorre::onnx
