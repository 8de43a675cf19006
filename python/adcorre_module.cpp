// The Python module `adcorre`: api::Recognizer for Python programs.
//
//   import adcorre
//   rec = adcorre.Recognizer()                  # the shipped model, BlazeFace detector
//   for face in rec.recognize_fer("photo.jpg"):  # or rec.predict(numpy_bgr_image)
//       print(face["label"], face["score"], face["box"])
//
// Images are a path (str or os.PathLike) or a numpy uint8 array, H x W (gray)
// or H x W x 3 in BGR order, as cv2.imread returns it. Each face is a dict
// {"box": (x, y, w, h), "label": str, "score": float, "probs": {class: p}},
// the same fields and values as `adcorre predict` (which rounds to 6 decimals).
// A path that does not exist raises FileNotFoundError; every other adcorre
// failure (unreadable image, bad model file, bad option) raises adcorre.Error
// (a RuntimeError) whose message names the file or option. The GIL is
// released while a model runs, so threads may call predict() concurrently.
#include <filesystem>
#include <string>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "adcorre/api/recognizer.h"
#include "adcorre/util/error.h"

namespace py = pybind11;
using adcorre::api::Recognizer;
using adcorre::api::RecognizerOptions;

namespace {

py::object to_python(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null: return py::none();
    case nlohmann::json::value_t::boolean: return py::bool_(j.get<bool>());
    case nlohmann::json::value_t::number_integer: return py::int_(j.get<int64_t>());
    case nlohmann::json::value_t::number_unsigned: return py::int_(j.get<uint64_t>());
    case nlohmann::json::value_t::number_float: return py::float_(j.get<double>());
    case nlohmann::json::value_t::string: return py::str(j.get<std::string>());
    case nlohmann::json::value_t::array: {
      py::list l;
      for (const auto& v : j) l.append(to_python(v));
      return std::move(l);
    }
    case nlohmann::json::value_t::object: {
      py::dict d;
      for (auto it = j.begin(); it != j.end(); ++it) d[py::str(it.key())] = to_python(it.value());
      return std::move(d);
    }
    default: return py::none();  // binary / discarded: never produced by adcorre
  }
}

py::list faces_to_python(const std::vector<adcorre::infer::Face>& faces, const std::vector<std::string>& names) {
  py::list out;
  for (const auto& f : faces) {
    py::dict d, probs;
    d["box"] = py::make_tuple(f.box.x, f.box.y, f.box.width, f.box.height);
    d["label"] = f.label;
    d["score"] = f.score;
    for (size_t c = 0; c < f.probs.size() && c < names.size(); ++c) probs[py::str(names[c])] = f.probs[c];
    d["probs"] = probs;
    out.append(d);
  }
  return out;
}

// A view of a numpy image as a cv::Mat (no copy; the array outlives the call).
cv::Mat mat_of(const py::array& any) {
  if (any.dtype().kind() != 'u' || any.itemsize() != 1)
    throw py::type_error("image array must have dtype uint8 (got " + py::str(any.dtype()).cast<std::string>() +
                         "); convert with .astype(numpy.uint8)");
  const auto a = py::array_t<uint8_t, py::array::c_style>::ensure(any);  // copies only a non-contiguous view
  if (!a) throw py::type_error("image array cannot be made contiguous");
  if (a.ndim() == 2) return cv::Mat(static_cast<int>(a.shape(0)), static_cast<int>(a.shape(1)), CV_8UC1, const_cast<uint8_t*>(a.data())).clone();
  if (a.ndim() == 3 && (a.shape(2) == 3 || a.shape(2) == 1 || a.shape(2) == 4))
    return cv::Mat(static_cast<int>(a.shape(0)), static_cast<int>(a.shape(1)), CV_8UC(static_cast<int>(a.shape(2))),
                   const_cast<uint8_t*>(a.data())).clone();
  std::string shape;
  for (py::ssize_t i = 0; i < a.ndim(); ++i) shape += (i ? " x " : "") + std::to_string(a.shape(i));
  throw py::value_error("image array must be H x W (gray) or H x W x 3 (BGR), got " + shape);
}

std::string path_of(const py::handle& p) {
  const std::string path = py::str(py::module_::import("os").attr("fspath")(p)).cast<std::string>();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    PyErr_SetObject(PyExc_FileNotFoundError,
                    py::make_tuple(2, "no such image file: " + path, path).ptr());  // errno, strerror, filename
    throw py::error_already_set();
  }
  return path;
}

py::list predict(Recognizer& r, const py::object& image) {
  std::vector<adcorre::infer::Face> faces;
  if (py::isinstance<py::array>(image)) {
    cv::Mat m = mat_of(image);
    py::gil_scoped_release unlocked;
    faces = r.predict(m);
  } else if (py::isinstance<py::str>(image) || py::hasattr(image, "__fspath__")) {
    const std::string path = path_of(image);
    py::gil_scoped_release unlocked;
    faces = r.predict_file(path);
  } else {
    throw py::type_error("image must be a file path or a numpy uint8 array (H x W or H x W x 3, BGR)");
  }
  return faces_to_python(faces, r.class_names());
}

py::dict info(const Recognizer& r) {
  const auto i = r.info();
  py::dict d;
  d["model_path"] = i.path;
  d["arch"] = i.arch;
  d["class_names"] = i.class_names;
  d["input_size"] = i.input_size;
  d["channels"] = i.channels;
  d["config"] = to_python(i.config);
  d["version"] = ADCORRE_VERSION;
  return d;
}

}  // namespace

PYBIND11_MODULE(adcorre, m) {
  m.doc() = "Facial expression recognition (Ad-Corre) on LibTorch: adcorre's C++ engine for Python";
  m.attr("__version__") = ADCORRE_VERSION;
  static py::exception<adcorre::Error> error(m, "Error", PyExc_RuntimeError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const adcorre::Error& e) {
      PyErr_SetString(error.ptr(), e.what());
    }
  });

  py::class_<Recognizer>(m, "Recognizer",
                         "Loads a model once; finds every face in an image and classifies its expression.")
      .def(py::init([](const py::object& model, const std::string& detector, int min_face, int max_side, std::optional<double> margin,
                       bool align, const std::string& tta, const std::string& device) {
             RecognizerOptions o;
             if (!model.is_none()) o.model = path_of(model);
             o.detector.kind = detector;
             o.detector.min_face = min_face;
             o.detector.max_side = max_side;
             o.margin = margin;
             o.align = align;
             o.tta = tta;
             o.device = device;
             py::gil_scoped_release unlocked;
             return std::make_unique<Recognizer>(std::move(o));
           }),
           py::arg("model") = py::none(), py::arg("detector") = adcorre::infer::default_detector_kind(), py::arg("min_face") = 40,
           py::arg("max_side") = 1280, py::arg("margin") = py::none(), py::arg("align") = false, py::arg("tta") = "none",
           py::arg("device") = "cpu",
           "model: an adcorre model file (None: the shipped FER-2013 model). detector: blazeface | haar | lbp | dlib | none "
           "(none: the whole image is one face crop). min_face, max_side: detector sizes in pixels. margin: box "
           "growth per side before cropping (None: the detector's fitted crop policy). align: level the eyes (dlib). tta: none | flip. device: cpu | cuda.")
      .def("predict", &predict, py::arg("image"),
           "Faces in an image (a path, or a numpy uint8 array H x W or H x W x 3 in BGR order), largest first: "
           "a list of dicts {box: (x, y, w, h), label, score, probs: {class: probability}}.")
      .def("recognize_fer", &predict, py::arg("img_path"),
           "The same as predict(), named as in the Ad-Corre paper's code (TestModels.recognize_fer).")
      .def(
          "evaluate",
          [](Recognizer& r, const py::object& data_dir, const std::string& dataset, const std::string& split,
             const std::string& tta) {
            const std::string dir = py::str(py::module_::import("os").attr("fspath")(data_dir)).cast<std::string>();
            nlohmann::json j;
            {
              py::gil_scoped_release unlocked;
              j = r.evaluate(dir, dataset, split, tta).to_json();
            }
            return to_python(j);
          },
          py::arg("data_dir"), py::arg("dataset") = "auto", py::arg("split") = "", py::arg("tta") = "none",
          "Scores the model on a labelled dataset as `adcorre eval` does (no face detection): a dict with "
          "accuracy, mean_class_accuracy, per-class metrics, the confusion matrix, dropped_classes, skipped_images.")
      .def(
          "load_model",
          [](Recognizer& r, const py::object& model) {
            const std::string path = model.is_none() ? std::string() : path_of(model);
            py::gil_scoped_release unlocked;
            r.load_model(path);
          },
          py::arg("model") = py::none(), "Replaces the model (None: the shipped one); the other options stay.")
      .def("info", &info, "The loaded model: model_path, arch, class_names, input_size, channels, config.")
      .def_property_readonly("class_names", &Recognizer::class_names);
}
