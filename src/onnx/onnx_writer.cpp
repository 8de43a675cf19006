// The protobuf wire format, by hand: every message is a run of (tag, value)
// pairs, tag = field number << 3 | wire type (0 varint, 2 length-delimited,
// 5 fixed 32-bit). Field numbers are those of onnx.proto (ONNX 1.12).
#include "adcorre/onnx/onnx_writer.h"

#include <cstring>
#include <numeric>

#include "adcorre/util/error.h"

namespace adcorre::onnx {

namespace {

class Message {
 public:
  void varint(int field, uint64_t v) {
    key(field, 0);
    raw_varint(v);
  }
  void bytes(int field, const std::string& s) {
    key(field, 2);
    raw_varint(s.size());
    buf_ += s;
  }
  void message(int field, const Message& m) { bytes(field, m.buf_); }
  void float32(int field, float f) {
    key(field, 5);
    char b[4];
    std::memcpy(b, &f, 4);  // protobuf's fixed32 is little-endian, as is x86/ARM
    buf_.append(b, 4);
  }
  const std::string& str() const { return buf_; }

 private:
  void key(int field, int wire) { raw_varint(static_cast<uint64_t>(field) << 3 | wire); }
  void raw_varint(uint64_t v) {
    while (v >= 0x80) {
      buf_ += static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    buf_ += static_cast<char>(v);
  }
  std::string buf_;
};

// onnx.proto enums.
constexpr int kFloat = 1;                                  // TensorProto.DataType FLOAT
constexpr int kAttrFloat = 1, kAttrInt = 2, kAttrInts = 7;  // AttributeProto.AttributeType

Message value_info(const std::string& name, const std::vector<Dim>& dims) {
  Message shape;
  for (const auto& d : dims) {
    Message dim;
    if (d.param.empty()) dim.varint(1, static_cast<uint64_t>(d.value));  // dim_value
    else dim.bytes(2, d.param);                                          // dim_param
    shape.message(1, dim);
  }
  Message tensor_type;
  tensor_type.varint(1, kFloat);  // elem_type
  tensor_type.message(2, shape);
  Message type;
  type.message(1, tensor_type);
  Message v;
  v.bytes(1, name);
  v.message(2, type);
  return v;
}

}  // namespace

Attr attr(const std::string& name, int64_t value) {
  Attr a;
  a.name = name;
  a.kind = Attr::Kind::Int;
  a.i = value;
  return a;
}
Attr attr(const std::string& name, std::vector<int64_t> values) {
  Attr a;
  a.name = name;
  a.kind = Attr::Kind::Ints;
  a.ints = std::move(values);
  return a;
}
Attr attr_float(const std::string& name, float value) {
  Attr a;
  a.name = name;
  a.kind = Attr::Kind::Float;
  a.f = value;
  return a;
}

std::string OnnxGraph::unique(const std::string& hint) {
  std::string name = hint;
  for (int i = 1; used_.count(name); ++i) name = hint + "_" + std::to_string(i);
  used_.insert(name);
  return name;
}

std::string OnnxGraph::constant(const std::string& hint, std::vector<int64_t> dims, std::vector<float> values) {
  const int64_t n = std::accumulate(dims.begin(), dims.end(), int64_t{1}, std::multiplies<int64_t>());
  if (n != static_cast<int64_t>(values.size()))
    throw Error("ONNX constant " + hint + ": " + std::to_string(values.size()) + " values for " + std::to_string(n) +
                " elements");
  auto name = unique(hint);
  constants_.push_back({name, std::move(dims), std::move(values)});
  return name;
}

std::string OnnxGraph::node(const std::string& op, std::vector<std::string> inputs, std::vector<Attr> attrs,
                            const std::string& output) {
  auto out = unique(output.empty() ? op : output);
  nodes_.push_back({op, out + "_node", std::move(inputs), out, std::move(attrs)});
  return out;
}

void OnnxGraph::add_input(const std::string& name, std::vector<Dim> dims) {
  used_.insert(name);
  inputs_.push_back({name, std::move(dims)});
}
void OnnxGraph::add_output(const std::string& name, std::vector<Dim> dims) { outputs_.push_back({name, std::move(dims)}); }
void OnnxGraph::add_metadata(const std::string& key, const std::string& value) { metadata_.emplace_back(key, value); }

std::string OnnxGraph::serialize(int64_t opset, const std::string& producer_version) const {
  Message graph;
  for (const auto& n : nodes_) {
    Message m;
    for (const auto& in : n.inputs) m.bytes(1, in);
    m.bytes(2, n.output);
    m.bytes(3, n.name);
    m.bytes(4, n.op);
    for (const auto& a : n.attrs) {
      Message am;
      am.bytes(1, a.name);
      switch (a.kind) {
        case Attr::Kind::Int: am.varint(20, kAttrInt); am.varint(3, static_cast<uint64_t>(a.i)); break;
        case Attr::Kind::Ints:
          am.varint(20, kAttrInts);
          for (auto v : a.ints) am.varint(8, static_cast<uint64_t>(v));  // negative: 10-byte two's complement, as protobuf
          break;
        case Attr::Kind::Float: am.varint(20, kAttrFloat); am.float32(2, a.f); break;
      }
      m.message(5, am);
    }
    graph.message(1, m);
  }
  graph.bytes(2, name_);
  for (const auto& t : constants_) {
    Message m;
    for (auto d : t.dims) m.varint(1, static_cast<uint64_t>(d));
    m.varint(2, kFloat);
    m.bytes(8, t.name);
    // raw_data: the values as little-endian float32, the compact encoding
    std::string raw(t.values.size() * 4, '\0');
    if (!t.values.empty()) std::memcpy(raw.data(), t.values.data(), raw.size());
    m.bytes(9, raw);
    graph.message(5, m);
  }
  for (const auto& v : inputs_) graph.message(11, value_info(v.name, v.dims));
  for (const auto& v : outputs_) graph.message(12, value_info(v.name, v.dims));

  Message model;
  model.varint(1, 6);  // ir_version 6 (ONNX 1.6), the IR of opset 11
  model.bytes(2, "adcorre");
  model.bytes(3, producer_version);
  model.message(7, graph);
  Message opset_id;
  opset_id.bytes(1, "");  // the default ai.onnx domain
  opset_id.varint(2, static_cast<uint64_t>(opset));
  model.message(8, opset_id);
  for (const auto& [k, v] : metadata_) {
    Message e;
    e.bytes(1, k);
    e.bytes(2, v);
    model.message(14, e);
  }
  return model.str();
}

}  // namespace adcorre::onnx
