// `adcorre bench`: the quick mode runs every section end to end and writes a
// JSON result with positive numbers (speeds are recorded, never asserted);
// the timing policy and the report are checked on their own.
#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "adcorre/bench/suite.h"
#include "adcorre/bench/timing.h"
#include "adcorre/util/error.h"
#include "test_util.h"

using namespace adcorre;
using nlohmann::json;

namespace {

double number(const json& j, std::initializer_list<const char*> path) {
  const json* p = &j;
  std::string where;
  for (auto k : path) {
    where += std::string("/") + k;
    if (!p->is_object() || !p->contains(k)) {
      ADD_FAILURE() << "missing " << where;
      return -1;
    }
    p = &p->at(k);
  }
  if (!p->is_number()) {
    ADD_FAILURE() << where << " is not a number: " << p->dump();
    return -1;
  }
  return p->get<double>();
}

void expect_positive_measurement(const json& m, const std::string& what) {
  SCOPED_TRACE(what);
  EXPECT_GE(number(m, {"iters"}), 1);
  EXPECT_GT(number(m, {"median_s"}), 0);
  EXPECT_GT(number(m, {"cpu_median_s"}), 0);
  EXPECT_LE(number(m, {"min_s"}), number(m, {"median_s"}));
  EXPECT_LE(number(m, {"median_s"}), number(m, {"max_s"}));
}

}  // namespace

TEST(BenchTiming, StopsAtMinItersAndMaxIters) {
  int calls = 0;
  auto s = bench::measure([&] { ++calls; }, bench::Timing{2, 5, 0.0, 100});
  EXPECT_EQ(calls, 7);  // 2 warm-up + 5 timed
  EXPECT_EQ(s.wall_s.size(), 5u);
  EXPECT_EQ(s.cpu_s.size(), 5u);
  calls = 0;
  s = bench::measure([&] { ++calls; }, bench::Timing{0, 1, 60.0, 3});
  EXPECT_EQ(s.wall_s.size(), 3u);  // max_iters wins over min_seconds
}

TEST(BenchTiming, RunsForMinSeconds) {
  auto s = bench::measure([] { std::this_thread::sleep_for(std::chrono::milliseconds(5)); },
                          bench::Timing{0, 1, 0.05, 1000});
  EXPECT_GE(s.wall_s.size(), 5u);
  for (double t : s.wall_s) EXPECT_GE(t, 0.004);
}

TEST(BenchTiming, SummaryStatistics) {
  bench::Samples s;
  s.wall_s = {0.4, 0.1, 0.2, 0.3};
  s.cpu_s = {0.1, 0.1, 0.2, 0.2};
  auto j = bench::summarize(s, 8);
  EXPECT_DOUBLE_EQ(j["median_s"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(j["min_s"].get<double>(), 0.1);
  EXPECT_DOUBLE_EQ(j["max_s"].get<double>(), 0.4);
  EXPECT_DOUBLE_EQ(j["mean_s"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(j["cpu_median_s"].get<double>(), 0.15);
  EXPECT_DOUBLE_EQ(j["items_per_s"].get<double>(), 32.0);
  EXPECT_THROW(bench::summarize(bench::Samples{}, 1), Error);
}

TEST(BenchOptions, BadOptionsAreNamed) {
  bench::BenchOptions o;
  o.sections = {"inference", "speed"};
  try {
    o.validate();
    FAIL() << "no error for an unknown section";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'speed'"), std::string::npos) << e.what();
  }
  o.sections = {};
  o.presets = {"no-such-preset"};
  EXPECT_THROW(o.validate(), Error);
  std::string out;
  EXPECT_EQ(test::run_command(test::adcorre_binary() + " bench --sections nope", &out, true), 1);
  EXPECT_NE(out.find("unknown section 'nope'"), std::string::npos) << out;
}

// The CI check: every section runs and reports positive numbers.
TEST(BenchQuick, EverySectionRunsAndReportsPositiveNumbers) {
  test::TempDir tmp;
  const std::string out_dir = tmp / "bench";
  std::string log;
  const int rc = test::run_command(test::adcorre_binary() + " --threads 1 bench --quick --out '" + out_dir + "'",
                                   &log, true);
  ASSERT_EQ(rc, 0) << log;
  std::ifstream in(out_dir + "/bench.json");
  ASSERT_TRUE(in) << "no bench.json\n" << log;
  const json r = json::parse(in);

  const auto& m = r.at("machine");
  EXPECT_FALSE(m.value("cpu", "").empty());
  EXPECT_GE(m.value("cores", 0), 1);
  EXPECT_EQ(m.value("threads", 0), 1);
  EXPECT_FALSE(m.value("blas", "").empty());
  EXPECT_FALSE(m.value("libtorch", "").empty());
  EXPECT_FALSE(m.value("commit", "").empty());

  const bool python = r.at("python_side").value("available", false);
  if (!python) std::cerr << "note: Python side unavailable: " << r["python_side"].value("note", "?") << "\n";
  auto check_pair = [&](const json& p, const std::string& what) {
    expect_positive_measurement(p.at("adcorre"), what + " (adcorre)");
    if (python) {
      expect_positive_measurement(p.at("python"), what + " (python)");
      EXPECT_GT(number(p, {"speedup"}), 0) << what;
    }
  };

  ASSERT_TRUE(r.contains("inference") && !r["inference"].empty());
  for (auto& e : r["inference"]) {
    check_pair(e.at("latency"), "inference latency");
    check_pair(e.at("throughput"), "inference throughput");
    EXPECT_GT(number(e, {"throughput", "adcorre", "items_per_s"}), 0);
  }
  ASSERT_TRUE(r.contains("training") && !r["training"].empty());
  for (auto& e : r["training"]) {
    check_pair(e, "training");
    EXPECT_GT(number(e, {"adcorre", "items_per_s"}), 0);
  }

  const auto& l = r.at("loss");
  EXPECT_EQ(l.value("B", 0), 64);
  EXPECT_EQ(l.value("k", 0), 7);
  EXPECT_EQ(l.value("d", 0), 256);
  EXPECT_EQ(l.value("C", 0), 7);
  expect_positive_measurement(l.at("adcorre_fwd_bwd"), "loss fwd+bwd");
  expect_positive_measurement(l.at("adcorre_fwd"), "loss fwd");
  EXPECT_GT(number(l, {"share_of_step"}), 0);
  if (python) {
    expect_positive_measurement(l.at("numpy_loops_fwd"), "numpy loss");
    expect_positive_measurement(l.at("python_torch_fwd_bwd"), "torch loss");
    EXPECT_GT(number(l, {"speedup_vs_numpy_loops"}), 0);
    // The numpy-loops loss computes the same value as the vectorised one.
    EXPECT_LT(number(l, {"numpy_loops_vs_torch_rel_diff"}), 1e-4);
  }

  const auto& ld = r.at("loader");
  EXPECT_GT(number(ld, {"decode", "images"}), 0);
  EXPECT_GT(number(ld, {"decode", "items_per_s"}), 0);
  EXPECT_GT(number(ld, {"assembly", "items_per_s"}), 0);
  EXPECT_GT(number(ld, {"assembly_strong_augment", "items_per_s"}), 0);

  const auto& p = r.at("predict");
  if (p.value("available", false)) {
    expect_positive_measurement(p.at("predict"), "predict");
    expect_positive_measurement(p.at("detect"), "detect");
    EXPECT_EQ(p["size"], json::array({640, 480}));
  } else {
    EXPECT_FALSE(p.value("note", "").empty()) << "predict unavailable without a reason";
  }

  ASSERT_EQ(r.at("targets").size(), 5u);
  std::ifstream md(out_dir + "/bench.md");
  ASSERT_TRUE(md);
  std::string text((std::istreambuf_iterator<char>(md)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("## Targets"), std::string::npos);
  EXPECT_NE(text.find("## Ad-Corre loss"), std::string::npos);
}
