// adcorre predict: the expression of every face in photos, folders, videos
// and cameras. One output record per image or sampled frame (JSON lines, or
// CSV rows); errors name the input on stderr and the rest carry on.
//
// Folders, lists of files and videos go through a small pipeline: worker
// threads decode and detect (Predictor::detect) up to kAhead inputs ahead,
// and this thread classifies the faces of every input that is ready as one
// batch, then writes the records in input order. The output is the same as
// predicting each input alone, and streams: a record is written as soon as
// its input and all before it are done, never after the whole folder.
#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>

#include "adcorre/data/preprocess.h"
#include "adcorre/infer/annotate.h"
#include "adcorre/infer/inputs.h"
#include "adcorre/infer/predictor.h"
#include "adcorre/util/csv_field.h"
#include "adcorre/util/error.h"
#include "adcorre/util/log.h"
#include "adcorre/util/runtime.h"
#include "cli.h"

namespace {

using namespace adcorre;
namespace sfs = std::filesystem;

struct PredictCli {
  std::string model;
  std::vector<std::string> inputs;
  int camera = -1;
  infer::PredictOptions opts;
  int every = 1;
  long max_frames = 0;
  bool csv = false;
  std::string annotate;
};

std::atomic<bool> g_interrupted{false};
extern "C" void on_sigint(int) { g_interrupted = true; }

// ---- output records ----

struct Record {
  std::string input;
  long frame = -1;       // videos and cameras only
  double time_s = -1;    // position in a video file
  std::vector<infer::Face> faces;
};

std::string fixed6(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6f", v);
  return buf;
}

class Output {
 public:
  Output(const std::vector<std::string>& names, bool csv, int top_k) : names_(names), csv_(csv), top_k_(top_k) {}

  void write(const Record& r) {
    if (csv_) write_csv(r);
    else write_json(r);
    std::cout.flush();  // a consumer reading a pipe sees each record as it comes
  }

 private:
  // face_to_json's values, with keys in reading order (nlohmann::json sorts
  // them): box, label, score, then probs in class order (--top: best first).
  nlohmann::ordered_json face_json(const infer::Face& f) const {
    const nlohmann::json plain = infer::face_to_json(f, names_, top_k_);
    nlohmann::ordered_json o;
    for (const char* key : {"box", "label", "score"}) o[key] = plain[key];
    o["probs"] = nlohmann::ordered_json::object();
    std::vector<int> order = infer::top_classes(f.probs, top_k_);
    if (top_k_ <= 0) std::sort(order.begin(), order.end());
    for (int c : order) o["probs"][names_[c]] = plain["probs"][names_[c]];
    return o;
  }

  void write_json(const Record& r) {
    nlohmann::ordered_json j;
    j["input"] = r.input;
    if (r.frame >= 0) j["frame"] = r.frame;
    if (r.time_s >= 0) j["time"] = std::round(r.time_s * 1000) / 1000;
    j["faces"] = nlohmann::ordered_json::array();
    for (const auto& f : r.faces) j["faces"].push_back(face_json(f));
    std::cout << j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
    if (!std::cout) throw adcorre::Error("cannot write the results to standard output (disk full or closed pipe?)");
  }

  void write_csv(const Record& r) {
    const int k = top_k_ > 0 ? std::min<int>(top_k_, names_.size()) : 0;
    if (!header_done_) {
      std::cout << "input,frame,face,x,y,w,h,label,score";
      if (k > 0)
        for (int i = 1; i <= k; ++i) std::cout << ",label_" << i << ",score_" << i;
      else
        for (const auto& n : names_) std::cout << "," << csv_field(n);
      std::cout << "\n";
      header_done_ = true;
    }
    const std::string frame = r.frame >= 0 ? std::to_string(r.frame) : "";
    const size_t columns = k > 0 ? 2 * k : names_.size();
    if (r.faces.empty()) {  // the input still gets a row, so nothing silently disappears
      std::cout << csv_field(r.input) << "," << frame << std::string(7 + columns, ',') << "\n";
      return;
    }
    for (size_t i = 0; i < r.faces.size(); ++i) {
      const auto& f = r.faces[i];
      std::cout << csv_field(r.input) << "," << frame << "," << i << "," << f.box.x << "," << f.box.y << "," << f.box.width << ","
                << f.box.height << "," << csv_field(f.label) << "," << fixed6(f.score);
      if (k > 0)
        for (int c : infer::top_classes(f.probs, k)) std::cout << "," << csv_field(names_[c]) << "," << fixed6(f.probs[c]);
      else
        for (double p : f.probs) std::cout << "," << fixed6(p);
      std::cout << "\n";
    }
  }

  std::vector<std::string> names_;
  bool csv_;
  int top_k_;
  bool header_done_ = false;
};

// ---- annotated copies ----

// Chooses unique output names inside the annotate folder, never an input itself.
class AnnotateNames {
 public:
  explicit AnnotateNames(std::string dir) : dir_(std::move(dir)) {}
  bool enabled() const { return !dir_.empty(); }

  std::string image_path(const infer::InputItem& in) {
    sfs::path rel(in.relative);
    // Keep the format when OpenCV writes 8-bit BGR in it, else PNG.
    static const std::set<std::string> writable{".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pnm"};
    std::string ext = rel.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    if (!writable.count(ext)) rel.replace_extension(".png");
    return unique(rel, in.path);
  }
  std::string video_path(const std::string& relative, const std::string& source) {
    sfs::path rel(relative);
    rel.replace_extension(".avi");  // MJPG in AVI: the one writer every OpenCV build has
    return unique(rel, source);
  }

 private:
  std::string unique(const sfs::path& rel, const std::string& source) {
    sfs::path target = sfs::path(dir_) / rel;
    std::error_code ec;
    for (int n = 2; used_.count(target.string()) || sfs::equivalent(target, source, ec); ++n) {
      target = sfs::path(dir_) / rel.parent_path() / (rel.stem().string() + "-" + std::to_string(n) + rel.extension().string());
      ec.clear();
    }
    used_.insert(target.string());
    sfs::create_directories(target.parent_path());
    return target.string();
  }
  std::string dir_;
  std::set<std::string> used_;
};

// ---- decode and detect ahead, classify in batches ----

// One input (an image file or a sampled video frame) decoded and detected.
struct Prepared {
  std::string error;      // non-empty: the input failed; reported in order
  bool decoded = true;    // false: the error is that the file could not be decoded
  cv::Mat image;          // kept for --annotate only
  infer::DetectedFaces found;
  long frame = -1;        // videos: the frame index
};

// Runs `prepare` on worker threads over the jobs `next_job` hands out in
// order (called under a lock, so it may read a video sequentially), at most
// `ahead` jobs beyond the oldest one not yet taken by pop(). Results come out
// of pop() in job order.
template <class Job>
class DetectAhead {
 public:
  DetectAhead(int workers, long ahead, std::function<bool(Job&)> next_job, std::function<Prepared(Job&)> prepare)
      : ahead_(ahead), next_job_(std::move(next_job)), prepare_(std::move(prepare)) {
    for (int i = 0; i < workers; ++i) workers_.emplace_back([this] { work(); });
  }
  ~DetectAhead() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
  }
  enum class Pop { ready, not_ready, end };
  // The next result in order: waits for it when `wait`, else returns not_ready.
  Pop pop(Prepared& out, bool wait) {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      auto it = done_.find(next_out_);
      if (it != done_.end()) {
        out = std::move(it->second);
        done_.erase(it);
        ++next_out_;
        cv_.notify_all();  // a worker may take one more job
        return Pop::ready;
      }
      if (exhausted_ && next_out_ == next_in_) return Pop::end;
      if (!wait) return Pop::not_ready;
      cv_.wait(lock);
    }
  }

 private:
  void work() {
    for (;;) {
      Job job;
      long seq;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [&] { return stop_ || exhausted_ || next_in_ - next_out_ < ahead_; });
        if (stop_ || exhausted_) return;
        bool more = false;
        try {
          more = next_job_(job);
        } catch (const std::exception& e) {  // the source itself failed: its error ends the run in order
          more = false;
          done_[next_in_].error = e.what();
          ++next_in_;
        }
        if (!more) {
          exhausted_ = true;
          cv_.notify_all();
          return;
        }
        seq = next_in_++;
      }
      Prepared p;
      try {
        p = prepare_(job);
      } catch (const std::exception& e) {
        p.error = e.what();
        if (p.error.empty()) p.error = "unknown error";
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        done_[seq] = std::move(p);
      }
      cv_.notify_all();
    }
  }

  const long ahead_;
  std::function<bool(Job&)> next_job_;
  std::function<Prepared(Job&)> prepare_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::map<long, Prepared> done_;
  long next_in_ = 0, next_out_ = 0;
  bool exhausted_ = false, stop_ = false;
  std::vector<std::thread> workers_;
};

constexpr long kAhead = 64;          // inputs decoded and detected ahead of the output
constexpr size_t kBatchFaces = 64;   // faces classified per batch, at most

// As many decoding/detecting threads as --threads (LibTorch's count), at most 4.
int pipeline_workers() { return std::max(1, std::min(runtime::threads(), 4)); }

// Pops every result that is ready (waiting for the first), classifies all
// their faces as one batch, and hands each input's faces to `emit` in order.
// Returns false at the end of the jobs.
template <class Job>
bool classify_ready(DetectAhead<Job>& ahead, infer::Predictor& predictor,
                    const std::function<void(Prepared&, std::vector<infer::Face>)>& emit) {
  std::vector<Prepared> ready(1);
  if (ahead.pop(ready[0], true) == DetectAhead<Job>::Pop::end) return false;
  size_t faces = ready[0].found.crops.size();
  while (faces < kBatchFaces) {
    Prepared more;
    if (ahead.pop(more, false) != DetectAhead<Job>::Pop::ready) break;
    faces += more.found.crops.size();
    ready.push_back(std::move(more));
  }
  std::vector<cv::Mat> crops;
  crops.reserve(faces);
  for (auto& r : ready)
    if (r.error.empty()) crops.insert(crops.end(), r.found.crops.begin(), r.found.crops.end());
  std::vector<std::vector<double>> probs;
  try {
    probs = predictor.classify(crops);
  } catch (const std::exception& e) {  // each input of the batch reports it, in order
    for (auto& r : ready)
      if (r.error.empty()) r.error = e.what();
  }
  size_t at = 0;
  for (auto& r : ready) {
    std::vector<infer::Face> found;
    if (r.error.empty()) {
      const size_t n = r.found.crops.size();
      found = predictor.faces_from(r.found.boxes, {probs.begin() + at, probs.begin() + at + n});
      at += n;
    }
    emit(r, std::move(found));
  }
  return true;
}

// ---- the runs ----

struct Totals {
  long read = 0, failed = 0, records = 0, faces = 0;
};

void report_error(const std::string& message, Totals& t) {
  std::cerr << "error: " << message << "\n";
  ++t.failed;
}

// One picture's record (and its annotated copy): the same for a lone file
// and for the batched path.
void write_image_record(const infer::InputItem& in, const cv::Mat& image, std::vector<infer::Face> faces, Output& out,
                        AnnotateNames& names, Totals& t) {
  Record r{in.path, -1, -1, std::move(faces)};
  if (r.faces.empty()) log::warn("no face found in " + in.path);
  out.write(r);
  ++t.records;
  t.faces += static_cast<long>(r.faces.size());
  if (names.enabled()) {
    const std::string target = names.image_path(in);
    if (!cv::imwrite(target, infer::draw_faces(image, r.faces))) report_error("cannot write annotated image " + target, t);
  }
}

void run_image(infer::Predictor& predictor, const infer::InputItem& in, Output& out, AnnotateNames& names, Totals& t) {
  cv::Mat image;
  try {
    image = data::decode_image(in.path, 3);
  } catch (const Error& e) {
    report_error(e.what(), t);
    return;
  }
  ++t.read;
  write_image_record(in, image, predictor.predict(image), out, names, t);
}

// Images items[first, last) through the pipeline: the same records, errors
// and annotated copies as run_image on each, in the same order.
void run_images(infer::Predictor& predictor, const std::vector<infer::InputItem>& items, size_t first, size_t last,
                Output& out, AnnotateNames& names, Totals& t) {
  size_t next = first;
  const bool keep_image = names.enabled();
  DetectAhead<size_t> ahead(
      pipeline_workers(), kAhead,
      [&](size_t& i) {
        if (next >= last || g_interrupted) return false;
        i = next++;
        return true;
      },
      [&](size_t& i) {
        Prepared p;
        cv::Mat image;
        try {
          image = data::decode_image(items[i].path, 3);
        } catch (const Error& e) {
          p.error = e.what();
          p.decoded = false;
          return p;
        }
        p.found = predictor.detect(image);
        // A crop may be a view of the whole picture: keep only its pixels
        // (kAhead pictures of a camera's size would hold a lot of memory).
        for (auto& c : p.found.crops)
          if (c.isSubmatrix()) c = c.clone();
        if (keep_image) p.image = image;
        return p;
      });
  size_t index = first;
  auto emit = [&](Prepared& p, std::vector<infer::Face> faces) {
    const auto& in = items[index++];
    if (!p.error.empty()) {
      if (!p.decoded) {  // as run_image reports it
        report_error(p.error, t);
      } else {
        ++t.read;  // decoded, then failed: as run_image's caller reports it
        report_error(in.path + ": " + p.error, t);
      }
      return;
    }
    ++t.read;
    write_image_record(in, p.image, std::move(faces), out, names, t);
  };
  while (classify_ready(ahead, predictor, emit)) {
  }
}

// Shows progress on long videos: redrawn in place on a terminal, else a line every 10 s.
class Progress {
 public:
  Progress(std::string name, long total) : name_(std::move(name)), total_(total), start_(clock::now()), last_(start_) {}
  void update(long frame, bool force = false) {
    if (log::level() == log::Level::quiet) return;
    const auto now = clock::now();
    const double since = std::chrono::duration<double>(now - last_).count();
    const bool tty = log::stderr_is_tty();
    if (!force && since < (tty ? 0.5 : 10.0)) return;
    last_ = now;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    std::ostringstream s;
    s << name_ << ": frame " << frame;
    if (total_ > 0) s << "/" << total_ << " (" << std::min(100L, 100 * frame / total_) << "%)";
    s << ", " << static_cast<int>(elapsed) << " s";
    if (tty) std::cerr << "\r" << s.str() << "\033[K" << (force ? "\n" : "") << std::flush;
    else log::info(s.str());
  }

 private:
  using clock = std::chrono::steady_clock;
  std::string name_;
  long total_;
  clock::time_point start_, last_;
};

struct FrameJob {
  cv::Mat frame;
  long index = -1;
};

void run_video(infer::Predictor& predictor, cv::VideoCapture& cap, const std::string& name, const std::string& annotate_rel,
               const PredictCli& o, Output& out, AnnotateNames& names, Totals& t, bool is_file) {
  const long total = is_file ? static_cast<long>(cap.get(cv::CAP_PROP_FRAME_COUNT)) : 0;
  double fps = cap.get(cv::CAP_PROP_FPS);
  if (!(fps > 0 && fps < 1000)) fps = 25;
  Progress progress(name, total);
  cv::VideoWriter writer;
  std::string writer_path;
  long index = -1, read = 0, sampled = 0, without_face = 0;
  bool decode_failed = false;  // stopped on a frame that could not be read (not the end)
  const bool keep_image = names.enabled();
  // Frames are read in order by whichever worker asks next (under the
  // pipeline's lock); their detection runs in parallel.
  DetectAhead<FrameJob> ahead(
      pipeline_workers(), kAhead,
      [&](FrameJob& job) {
        if (g_interrupted || (o.max_frames > 0 && read >= o.max_frames)) return false;
        for (;;) {
          if (!cap.grab()) {  // grab() skips unsampled frames without converting them
            decode_failed = total > 0 && index + 2 < total;  // the container said more frames follow
            return false;
          }
          ++index;
          if (index % o.every == 0) break;
        }
        if (!cap.retrieve(job.frame) || job.frame.empty()) {
          decode_failed = true;
          return false;
        }
        job.index = index;
        ++read;
        return true;
      },
      [&](FrameJob& job) {
        Prepared p;
        p.frame = job.index;
        p.found = predictor.detect(job.frame);
        for (auto& c : p.found.crops)
          if (c.isSubmatrix()) c = c.clone();
        if (keep_image) p.image = job.frame;
        return p;
      });
  std::string failure;
  auto emit = [&](Prepared& p, std::vector<infer::Face> faces) {
    if (!failure.empty()) return;
    if (!p.error.empty()) {  // as before the pipeline: the error ends this video
      failure = p.error;
      return;
    }
    Record r{name, p.frame, is_file ? p.frame / fps : -1.0, std::move(faces)};
    if (r.faces.empty()) ++without_face;
    out.write(r);
    ++sampled;
    t.faces += static_cast<long>(r.faces.size());
    if (names.enabled()) {
      cv::Mat drawn = infer::draw_faces(p.image, r.faces);
      if (!writer.isOpened() && writer_path.empty()) {
        writer_path = names.video_path(annotate_rel, is_file ? name : "");
        writer.open(writer_path, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), std::max(1.0, fps / o.every), drawn.size());
        if (!writer.isOpened()) report_error("cannot write annotated video " + writer_path, t);
      }
      if (writer.isOpened()) writer.write(drawn);
    }
    progress.update(p.frame + 1);
  };
  while (failure.empty() && classify_ready(ahead, predictor, emit)) {
  }
  if (!failure.empty()) throw Error(failure);  // reported by the caller, naming the video
  progress.update(index + 1, true);
  if (sampled == 0) {
    report_error(name + ": no frame could be read (not a video OpenCV can decode?)", t);
    return;
  }
  ++t.read;
  t.records += sampled;
  if (decode_failed)
    report_error(name + ": stopped at frame " + std::to_string(index + 1) + (total > 0 ? " of " + std::to_string(total) : "") +
                     ": the next frame could not be decoded (damaged video?); the frames before it were predicted", t);
  if (without_face > 0) log::warn("no face found in " + std::to_string(without_face) + " of " + std::to_string(sampled) + " sampled frames of " + name);
  if (g_interrupted) log::warn("interrupted: stopped " + name + " at frame " + std::to_string(index));
}

int run_predict(PredictCli& o) {
  check(o.every >= 1, "--every must be >= 1 (got " + std::to_string(o.every) + ")");
  check(!o.inputs.empty() || o.camera >= 0, "nothing to predict: give image/video files or folders, or --camera N");
  infer::validate(o.opts);
  const std::string model_path = models::resolve_model_path(o.model);
  auto predictor = infer::Predictor::from_file(model_path, o.opts, cli::globals().device);
  log::debug("model " + model_path + " (" + predictor.config().preset + ", " + std::to_string(predictor.config().input_size) + " px)");

  Output out(predictor.config().class_names, o.csv, o.opts.top_k);
  AnnotateNames names(o.annotate);
  Totals t;
  std::vector<std::string> errors;
  const auto items = infer::expand_inputs(o.inputs, errors);
  for (const auto& e : errors) report_error(e, t);
  if (!o.inputs.empty() && items.empty() && errors.empty()) log::warn("no image or video files found in the given folders");

  auto previous = std::signal(SIGINT, on_sigint);  // Ctrl-C ends a video or camera cleanly
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& in = items[i];
    if (g_interrupted) break;
    // A run of consecutive images goes through the pipeline together.
    size_t end = i + 1;
    if (in.kind == infer::InputKind::image)
      while (end < items.size() && items[end].kind == infer::InputKind::image) ++end;
    try {
      if (in.kind == infer::InputKind::image) {
        if (end - i == 1) {
          run_image(predictor, in, out, names, t);
        } else {
          const size_t first = i;
          i = end - 1;  // even when the output fails half-way: no image is predicted twice
          run_images(predictor, items, first, end, out, names, t);
        }
      } else {
        cv::VideoCapture cap;
        try {
          cap.open(in.path);
        } catch (const cv::Exception&) {
        }
        if (!cap.isOpened()) {
          report_error("cannot open video " + in.path + " (unreadable, or a format this OpenCV cannot decode)", t);
          continue;
        }
        run_video(predictor, cap, in.path, in.relative, o, out, names, t, true);
      }
    } catch (const std::exception& e) {  // one bad input must not end the run
      report_error(in.path + ": " + e.what(), t);
    }
  }
  if (o.camera >= 0 && !g_interrupted) {
    cv::VideoCapture cap(o.camera);
    const std::string name = "camera:" + std::to_string(o.camera);
    if (!cap.isOpened()) report_error("cannot open camera " + std::to_string(o.camera), t);
    else run_video(predictor, cap, name, "camera-" + std::to_string(o.camera), o, out, names, t, false);
  }
  std::signal(SIGINT, previous);

  auto count = [](long n, const char* what) { return std::to_string(n) + " " + what + (n == 1 ? "" : "s"); };
  log::info("predicted " + count(t.faces, "face") + " in " + count(t.records, "record") + " from " + count(t.read, "input") +
            (t.failed ? " (" + count(t.failed, "error") + ")" : ""));
  if (t.read == 0) {
    std::cerr << "error: nothing could be read\n";
    return 1;
  }
  std::cout.flush();
  if (!std::cout) {
    std::cerr << "error: cannot write the results to standard output (disk full or closed pipe?)\n";
    return 1;
  }
  // Every input was still tried, but results are missing: not a success.
  return t.failed > 0 ? 1 : 0;
}

adcorre::cli::Registrar register_predict(
    {"predict", "the expression of every face in images, folders, videos or a camera (JSON lines or CSV)", [](CLI::App& app) {
       auto o = std::make_shared<PredictCli>();
       app.add_option("inputs", o->inputs, "image or video files, or folders (searched recursively)");
       app.add_option("--model", o->model, "model file, or a shipped model's name (default: $ADCORRE_MODEL or models/fer2013-compact.pt)");
       app.add_option("--camera", o->camera, "also read camera N (until Ctrl-C or --max-frames)")->check(cli::at_least(0));
       app.add_option("--detector", o->opts.detector.kind, "face detector: blazeface | haar | lbp | dlib | none (inputs are face crops)")->capture_default_str();
       app.add_option("--tiles", o->opts.detector.blazeface_tiles,
                      "blazeface: also search an N x N grid of overlapping tiles, for faces under ~8 % of the picture's longer side (1: off)")
           ->check(cli::at_least(1))->capture_default_str();
       app.add_option("--min-face", o->opts.detector.min_face, "smallest face to find, in pixels")->check(cli::at_least(1))->capture_default_str();
       app.add_option("--max-side", o->opts.detector.max_side, "images larger than this are downscaled for detection (0: never)")
           ->check(CLI::Validator([](std::string& v) {
             return v == "0" || std::atoi(v.c_str()) >= 64 ? std::string() : std::string("must be 0 or >= 64 pixels");
           }, "0|>=64"))->capture_default_str();
       app.add_option_function<double>("--margin", [o](double m) { o->opts.margin = m; },
                                       "grow each face box by this fraction per side before classifying (default: the detector's fitted crop policy)")
           ->check(CLI::Range(0.0, 2.0));
       app.add_flag("--align", o->opts.align, "rotate faces so the eyes are level (dlib 68-point landmarks)");
       app.add_option("--tta", o->opts.tta, "test-time augmentation: none | flip")->capture_default_str();
       app.add_option("--every", o->every, "videos: classify every Nth frame")->check(cli::at_least(1))->capture_default_str();
       app.add_option("--max-frames", o->max_frames, "videos and camera: stop after this many sampled frames (0: all)")->check(cli::at_least(0))->capture_default_str();
       app.add_flag("--csv", o->csv, "CSV rows (one per face) instead of JSON lines");
       app.add_option("--top", o->opts.top_k, "only the K most probable classes per face (0: all)")->check(cli::at_least(0))->capture_default_str();
       app.add_option("--annotate", o->annotate, "write copies of the images/videos with boxes and labels drawn into this folder");
       return [o] { return run_predict(*o); };
     }});

}  // namespace
