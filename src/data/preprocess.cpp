#include "adcorre/data/preprocess.h"

#include <filesystem>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/torch.h>

#include "adcorre/serve/image_header.h"
#include "adcorre/util/error.h"
#include "adcorre/util/fs.h"
#include "data/image_bytes.h"

namespace adcorre::data {

static cv::Mat to_8u(cv::Mat img) {
  if (img.depth() == CV_8U) return img;
  double minv, maxv;
  cv::minMaxLoc(img.reshape(1), &minv, &maxv);
  cv::Mat out;
  if (img.depth() == CV_16U) img.convertTo(out, CV_8U, 1.0 / 257.0);
  else img.convertTo(out, CV_8U, maxv > minv ? 255.0 / (maxv - minv) : 1.0, maxv > minv ? -minv * 255.0 / (maxv - minv) : 0);
  return out;
}

// Refuses a picture whose declared size would take more memory to decode
// than any photo needs, before OpenCV allocates it.
static void check_declared_size(const std::string& bytes, const std::string& what) {
  auto h = serve::read_image_header(bytes);
  if (h && h->width * h->height > kMaxImagePixels)
    throw Error(what + " declares " + std::to_string(h->width) + " x " + std::to_string(h->height) +
                " pixels, more than the " + std::to_string(kMaxImagePixels / 1000000) + " megapixels adcorre decodes");
}

cv::Mat decode_image(const std::string& path, int channels) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) throw Error("image not found: " + path);
  if (!std::filesystem::is_regular_file(status))
    throw Error("cannot read image " + path + ": not a regular file" +
                (std::filesystem::is_directory(status) ? " (a folder)" : " (a device or pipe)"));
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec && static_cast<long long>(size) > kMaxImageFileBytes)
    throw Error("image " + path + " is " + std::to_string(size >> 20) + " MB, more than the " +
                std::to_string(kMaxImageFileBytes >> 20) + " MB adcorre reads");
  // Read the bytes first: OpenCV decodes a truncated JPEG without an error.
  const std::string bytes = fs::read_file(path);
  if (auto why = detail::encoded_image_problem(bytes); !why.empty()) throw Error("cannot decode image " + path + ": " + why);
  check_declared_size(bytes, "image " + path);
  cv::Mat img;
  try {
    cv::Mat buf(1, static_cast<int>(bytes.size()), CV_8U, const_cast<char*>(bytes.data()));
    img = cv::imdecode(buf, channels == 1 ? cv::IMREAD_GRAYSCALE : cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    throw Error("cannot decode image " + path + ": " + e.what());
  }
  if (img.empty()) throw Error("cannot decode image " + path + " (corrupt, truncated or not an image)");
  return to_8u(img);
}

cv::Mat decode_image_bytes(const std::string& bytes, int channels, const std::string& what) {
  if (bytes.empty()) throw Error(what + " is empty");
  if (auto why = detail::encoded_image_problem(bytes); !why.empty()) throw Error("cannot decode " + what + ": " + why);
  check_declared_size(bytes, what);
  cv::Mat buf(1, static_cast<int>(bytes.size()), CV_8U, const_cast<char*>(bytes.data()));
  cv::Mat img;
  try {
    img = cv::imdecode(buf, channels == 1 ? cv::IMREAD_GRAYSCALE : cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    throw Error("cannot decode " + what + ": " + e.what());
  }
  if (img.empty()) throw Error("cannot decode " + what + " (not an image OpenCV can read)");
  return to_8u(img);
}

cv::Mat to_model_pixels(const cv::Mat& image, const models::ModelConfig& cfg) {
  if (image.empty()) throw Error("empty image");
  cv::Mat src = to_8u(image), conv;
  const int ch = src.channels();
  if (cfg.in_channels == 1) {
    if (ch == 1) conv = src;
    else if (ch == 3) cv::cvtColor(src, conv, cv::COLOR_BGR2GRAY);
    else cv::cvtColor(src, conv, cv::COLOR_BGRA2GRAY);
  } else {
    const bool rgb = cfg.color_order == "rgb";
    if (ch == 1) cv::cvtColor(src, conv, rgb ? cv::COLOR_GRAY2RGB : cv::COLOR_GRAY2BGR);
    else if (ch == 3) { if (rgb) cv::cvtColor(src, conv, cv::COLOR_BGR2RGB); else conv = src; }
    else cv::cvtColor(src, conv, rgb ? cv::COLOR_BGRA2RGB : cv::COLOR_BGRA2BGR);
  }
  if (conv.rows == cfg.input_size && conv.cols == cfg.input_size) return conv.isContinuous() ? conv : conv.clone();
  cv::Mat out;
  // As the header says: INTER_AREA when shrinking more than 2x (a face crop
  // from a photo), where INTER_LINEAR would alias; INTER_LINEAR otherwise.
  const bool shrink_a_lot = conv.cols > 2 * cfg.input_size || conv.rows > 2 * cfg.input_size;
  cv::resize(conv, out, cv::Size(cfg.input_size, cfg.input_size), 0, 0, shrink_a_lot ? cv::INTER_AREA : cv::INTER_LINEAR);
  return out;
}

at::Tensor pack_u8(const std::vector<cv::Mat>& images) {
  if (images.empty()) return torch::empty({0});
  const int h = images[0].rows, w = images[0].cols, c = images[0].channels();
  auto out = torch::empty({static_cast<int64_t>(images.size()), h, w, c}, torch::kUInt8);
  for (size_t i = 0; i < images.size(); ++i) {
    const cv::Mat& m = images[i];
    TORCH_CHECK(m.rows == h && m.cols == w && m.channels() == c && m.type() == CV_8UC(c), "pack_u8: images differ in size");
    cv::Mat cont = m.isContinuous() ? m : m.clone();
    std::memcpy(out[i].data_ptr(), cont.data, static_cast<size_t>(h) * w * c);
  }
  return out.permute({0, 3, 1, 2});  // NCHW view of NHWC storage (channels_last)
}

at::Tensor images_to_input(const std::vector<cv::Mat>& images, const models::ModelConfig& cfg) {
  std::vector<cv::Mat> px;
  px.reserve(images.size());
  for (auto& im : images) px.push_back(to_model_pixels(im, cfg));
  return normalize(pack_u8(px), cfg);
}

}  // namespace adcorre::data
