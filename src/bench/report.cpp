// The Markdown report of a benchmark result (docs/benchmarks.md shows one).
#include <cmath>
#include <cstdio>
#include <sstream>

#include "adcorre/bench/suite.h"

namespace adcorre::bench {
using nlohmann::json;
namespace {

// 3 significant digits, no exponent for the usual ranges.
std::string fmt(double v) {
  if (!std::isfinite(v)) return "n/a";
  char buf[64];
  const double a = std::fabs(v);
  if (a >= 100) std::snprintf(buf, sizeof buf, "%.0f", v);
  else if (a >= 10) std::snprintf(buf, sizeof buf, "%.1f", v);
  else if (a >= 1) std::snprintf(buf, sizeof buf, "%.2f", v);
  else if (a >= 0.01) std::snprintf(buf, sizeof buf, "%.3f", v);
  else std::snprintf(buf, sizeof buf, "%.2g", v);
  return buf;
}

double get(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_number() ? j[key].get<double>() : NAN;
}

std::string ms(const json& m) { return m.is_null() ? "-" : fmt(1000.0 * get(m, "median_s")) + " ms"; }
std::string rate(const json& m, const char* unit) {
  return m.is_null() ? "-" : fmt(get(m, "items_per_s")) + " " + unit;
}
std::string speedup(const json& p, const char* key) {
  return p.contains(key) ? fmt(p[key].get<double>()) + "x" : "-";
}

}  // namespace

std::string markdown_report(const json& r) {
  std::ostringstream md;
  const auto& m = r.at("machine");
  const auto& s = r.at("settings");
  md << "# adcorre benchmark results\n\n";
  md << "| machine | |\n|---|---|\n";
  md << "| CPU | " << m.value("cpu", "?") << " (" << m.value("cores", 0) << " cores) |\n";
  md << "| threads | " << m.value("threads", 0) << " (adcorre and Python alike) |\n";
  md << "| load average (1/5/15 min) | start " << m.value("load_average", "?") << ", end "
     << m.value("load_average_end", "?") << " |\n";
  md << "| LibTorch | " << m.value("libtorch", "?") << (m.value("onednn", false) ? " with oneDNN" : "") << " |\n";
  md << "| BLAS | " << m.value("blas", "?") << " |\n";
  md << "| adcorre | " << m.value("adcorre", "?") << ", commit " << m.value("commit", "?") << " |\n";
  md << "| date | " << m.value("date", "?") << " |\n";
  const auto& py = r.at("python_side");
  if (py.value("available", false)) {
    const auto& v = py["versions"];
    md << "| Python side | " << py.value("interpreter", "?") << ": Python " << v.value("python", "?") << ", torch "
       << v.value("torch", "?") << ", numpy " << v.value("numpy", "?") << " |\n";
  } else {
    md << "| Python side | not run: " << py.value("note", "?") << " |\n";
  }
  md << "| mode | " << (s.value("quick", false) ? "quick (small sizes; not for comparison)" : "full") << ", "
     << r.value("seconds", 0.0) << " s |\n\n";

  md << "Times are medians over the timed iterations. speedup = Python time / adcorre time "
        "(> 1: adcorre is faster), from wall time and from process CPU time (CPU time is the work done "
        "whatever else runs on the machine).\n\n";

  if (r.contains("inference") || r.contains("training")) {
    md << "## Network: inference and training\n\n";
    md << "| benchmark | adcorre | Python (PyTorch) | speedup (wall) | speedup (CPU) |\n|---|---|---|---|---|\n";
    for (auto& e : r.value("inference", json::array())) {
      const std::string name = e["preset"].get<std::string>() + " " + e["input"].get<std::string>();
      const auto& lat = e["latency"];
      md << "| inference " << name << ", batch 1 (latency) | " << ms(lat["adcorre"]) << " | " << ms(lat["python"])
         << " | " << speedup(lat, "speedup") << " | " << speedup(lat, "speedup_cpu") << " |\n";
      const auto& thr = e["throughput"];
      md << "| inference " << name << ", batch " << thr["batch"] << " | " << rate(thr["adcorre"], "img/s") << " | "
         << rate(thr["python"], "img/s") << " | " << speedup(thr, "speedup") << " | " << speedup(thr, "speedup_cpu")
         << " |\n";
    }
    for (auto& e : r.value("training", json::array())) {
      md << "| training step " << e["preset"].get<std::string>() << " " << e["input"].get<std::string>()
         << ", batch " << e["batch"] << " | " << rate(e["adcorre"], "img/s") << " (" << ms(e["adcorre"])
         << "/step) | " << rate(e["python"], "img/s") << " (" << ms(e["python"]) << "/step) | "
         << speedup(e, "speedup") << " | " << speedup(e, "speedup_cpu") << " |\n";
    }
    md << "\nA training step is forward, Ad-Corre loss (with its confusion window), zero_grad, backward and an "
          "Adam step, on a fixed random batch; inference is eval mode without autograd. Both sides use "
          "channels_last and the same architecture (bench/python/adcorre_torch.py is a port of the C++ model).\n\n";
  }

  if (r.contains("loss")) {
    const auto& l = r["loss"];
    md << "## Ad-Corre loss (B " << l["B"] << ", k " << l["k"] << ", d " << l["d"] << ", C " << l["C"] << ")\n\n";
    md << "| implementation | time | adcorre speedup |\n|---|---|---|\n";
    md << "| adcorre, forward + backward | " << ms(l["adcorre_fwd_bwd"]) << " | |\n";
    md << "| adcorre, forward only | " << ms(l["adcorre_fwd"]) << " | |\n";
    md << "| PyTorch port (Python), forward + backward | " << ms(l["python_torch_fwd_bwd"]) << " | "
       << speedup(l, "speedup_vs_python_torch") << " |\n";
    md << "| numpy loops as in the released Keras code, forward only (no gradient) | " << ms(l["numpy_loops_fwd"])
       << " | " << speedup(l, "speedup_vs_numpy_loops") << " (fwd+bwd vs fwd), "
       << speedup(l, "speedup_vs_numpy_loops_fwd_only") << " (fwd vs fwd) |\n";
    if (l.contains("share_of_step"))
      md << "\nShare of a " << l["share_of_step_preset"].get<std::string>() << " training step (batch "
         << l["share_of_step_batch"] << "): **" << fmt(100.0 * l["share_of_step"].get<double>()) << "%** "
         << "(loss forward + backward time / whole step time; the loss is measured at d " << l["d"]
         << ", at least the preset's d).\n";
    if (l.contains("numpy_loops_vs_torch_rel_diff"))
      md << "\nThe numpy-loops total agrees with the vectorised one to " << fmt(l["numpy_loops_vs_torch_rel_diff"].get<double>())
         << " (relative), and both Python versions match the golden values (bench/python/check_golden.py).\n";
    md << "\n";
  }

  if (r.contains("loader")) {
    const auto& l = r["loader"];
    md << "## Data loader (" << l.value("dataset", "?") << ")\n\n";
    md << "| stage | img/s (wall) | img/s per CPU second |\n|---|---|---|\n";
    const auto& d = l["decode"];
    md << "| decode " << d["images"] << " images into the cache (build_cache, " << d["threads"] << " threads) | "
       << fmt(get(d, "items_per_s")) << " | " << fmt(get(d, "items_per_cpu_s")) << " |\n";
    md << "| batch assembly (index_select, normalise, channels_last), batch " << l["batch"] << " | "
       << fmt(get(l["assembly"], "items_per_s")) << " | " << fmt(get(l["assembly"], "items_per_cpu_s")) << " |\n";
    md << "| batch assembly + strong augmentation, batch " << l["batch"] << " | "
       << fmt(get(l["assembly_strong_augment"], "items_per_s")) << " | "
       << fmt(get(l["assembly_strong_augment"], "items_per_cpu_s")) << " |\n";
    if (l.contains("note")) md << "\n" << l["note"].get<std::string>() << "\n";
    md << "\n";
  }

  if (r.contains("model") && r["model"].value("available", false)) {
    const auto& p = r["model"];
    md << "## model file: " << p.value("model", "?") << " (" << p.value("arch", "?") << ", "
       << p.value("networks", 0) << " network(s), " << p.value("threads", 0) << " threads)\n\n";
    md << "load average " << p.value("load_average", "?") << " at the start, " << p.value("load_average_end", "?")
       << " at the end; faces: " << p.value("crops", "?") << "\n\n";
    md << "| measurement | value |\n|---|---|\n";
    auto row = [&](const char* what, const std::string& v) { md << "| " << what << " | " << v << " |\n"; };
    auto per_face = [&](const json& m) { return m.is_null() ? std::string("-") : fmt(1000.0 * get(m, "median_s") / get(m, "items")) + " ms/face"; };
    row("classify, batch 1 (Predictor::classify)", per_face(p.value("batch1", json())));
    row("classify, batch 64", rate(p.value("batch64", json()), "faces/s"));
    if (p.contains("batch1_1thread")) {
      row("classify, batch 1, 1 thread", per_face(p["batch1_1thread"]));
      row("classify, batch 64, 1 thread", rate(p["batch64_1thread"], "faces/s"));
    }
    row("forward, batch 1, BatchNorm folded", ms(p.value("folded_forward_batch1", json())));
    row("forward, batch 1, not folded", ms(p.value("unfolded_forward_batch1", json())));
    row("forward, batch 64, BatchNorm folded", rate(p.value("folded_forward_batch64", json()), "faces/s"));
    row("forward, batch 64, not folded", rate(p.value("unfolded_forward_batch64", json()), "faces/s"));
    if (p.contains("photo")) row("640x480 photo, one face (Predictor::predict)", ms(p["photo"]));
    if (p.contains("folder")) {
      const auto& f = p["folder"];
      row("`predict --detector none` on a folder of crops, end to end",
          fmt(get(f, "faces_per_s")) + " faces/s (" + fmt(get(f, "faces")) + " faces in " + fmt(get(f, "seconds")) +
              " s; start-up " + fmt(get(f, "startup_s")) + " s; after it " + fmt(get(f, "faces_per_s_after_startup")) +
              " faces/s)");
    }
    if (p.contains("video")) {
      const auto& v = p["video"];
      row("`predict --every 1` on a 640x480 MJPEG video, one face",
          fmt(get(v, "frames_per_s")) + " frames/s end to end (" + fmt(get(v, "frames")) + " frames in " +
              fmt(get(v, "seconds")) + " s; after start-up " + fmt(get(v, "frames_per_s_after_startup")) + " frames/s)");
    }
    md << "\n";
  }
  if (r.contains("predict")) {
    const auto& p = r["predict"];
    md << "## predict: whole image\n\n";
    if (!p.value("available", false)) {
      md << "Not measured: " << p.value("note", "?") << "\n\n";
    } else {
      md << "| work (" << p["size"][0] << "x" << p["size"][1] << " photo, " << p["faces"] << " face(s), "
         << p.value("detector", "?") << " detector, " << p.value("preset", "?") << ") | latency |\n|---|---|\n";
      md << "| detection + crop + classification (Predictor::predict) | " << ms(p["predict"]) << " |\n";
      md << "| detection alone | " << ms(p["detect"]) << " |\n";
      if (p.contains("note")) md << "\n" << p["note"].get<std::string>() << "\n";
      md << "\n";
    }
  }

  md << "## Targets (recorded, not asserted)\n\n| target | wanted | measured | met |\n|---|---|---|---|\n";
  for (auto& t : r.value("targets", json::array())) {
    md << "| " << t["name"].get<std::string>() << " | " << t["wanted"].get<std::string>() << " | ";
    if (t["value"].is_null()) {
      md << "not measured in this run | - |\n";
    } else {
      md << fmt(t["value"].get<double>()) << " " << t["unit"].get<std::string>() << " | "
         << (t["met"].get<bool>() ? "yes" : "**no**") << " |\n";
    }
  }
  if (py.contains("errors")) {
    md << "\nPython side errors:\n";
    for (auto& e : py["errors"]) md << "- " << e.get<std::string>() << "\n";
  }
  return md.str();
}

}  // namespace adcorre::bench
