// Keras (TensorFlow, NHWC) weight layouts <-> LibTorch (NCHW) layouts.
// Private to src/keras.
//
//   Conv2D kernel       (kh, kw, in/groups, out)  <->  [out, in/groups, kh, kw]
//   depthwise_kernel    (kh, kw, in, mult)        <->  [in*mult, 1, kh, kw]
//                       (TF's depthwise output channel i*mult + m is torch's
//                        grouped-conv output channel i*mult + m)
//   pointwise_kernel    (1, 1, in, out)           <->  [out, in, 1, 1]
//   Dense kernel        (in, out)                 <->  [out, in]
//   vectors (bias, BN)  (n,)                      <->  [n]
#pragma once
#include <string>
#include <vector>

#include <torch/torch.h>

#include "adcorre/keras/keras_file.h"
#include "adcorre/util/error.h"

namespace adcorre::keras::layout {

enum class Kind { conv, depthwise, pointwise, dense, vector };

// The stored array as a float32 tensor of its Keras shape.
inline torch::Tensor as_tensor(const hdf5::FloatArray& a) {
  return torch::from_blob(const_cast<float*>(a.data.data()), a.shape, torch::kFloat).clone();
}

inline torch::Tensor to_torch(const torch::Tensor& k, Kind kind) {
  switch (kind) {
    case Kind::conv:
    case Kind::pointwise:
      return k.dim() == 4 ? k.permute({3, 2, 0, 1}).contiguous() : k;
    case Kind::depthwise:
      if (k.dim() != 4) return k;
      return k.permute({2, 3, 0, 1}).reshape({k.size(2) * k.size(3), 1, k.size(0), k.size(1)}).contiguous();
    case Kind::dense:
      return k.dim() == 2 ? k.t().contiguous() : k;
    case Kind::vector:
      return k;
  }
  return k;
}

// The inverse of to_torch; `mult` is the depth multiplier (depthwise only).
inline torch::Tensor to_keras(const torch::Tensor& t, Kind kind, int64_t mult = 1) {
  auto c = t.detach().to(torch::kCPU).to(torch::kFloat).contiguous();
  switch (kind) {
    case Kind::conv:
    case Kind::pointwise:
      return c.permute({2, 3, 1, 0}).contiguous();
    case Kind::depthwise:
      return c.reshape({c.size(0) / mult, mult, c.size(2), c.size(3)}).permute({2, 3, 0, 1}).contiguous();
    case Kind::dense:
      return c.t().contiguous();
    case Kind::vector:
      return c;
  }
  return c;
}

inline std::string shape_string(c10::IntArrayRef s) {
  std::string r = "(";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + (s.size() == 1 ? ",)" : ")");
}

// Copies Keras weight `w` into `dst` after the layout change; throws an Error
// naming the file, layer and weight when the shapes disagree.
inline void copy_weight(torch::Tensor dst, const KerasWeight& w, Kind kind, const std::string& file,
                        const std::string& layer) {
  auto src = to_torch(as_tensor(w.value), kind);
  if (src.sizes() != dst.sizes())
    throw Error("Keras file " + file + ": layer '" + layer + "' weight '" + w.name + "' has shape " +
                shape_string(w.value.shape) + ", the model needs " + shape_string(to_keras(dst, kind, 1).sizes()) +
                " here");
  torch::NoGradGuard ng;
  dst.copy_(src);
}

}  // namespace adcorre::keras::layout
