// The Ad-Corre loss against the independent float64 golden values, finite
// differences, gradient flow into a network, and edge cases.
#include <cstdlib>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "adcorre/loss/adcorre_loss.h"
#include "adcorre/util/error.h"
#include "test_util.h"

using namespace adcorre;
using nlohmann::json;

namespace {

json load_golden() {
  std::string path;
  if (const char* env = std::getenv("ADCORRE_GOLDEN"); env && *env) path = env;
  else if (!test::shared_dir().empty()) path = test::shared_dir() + "/testdata/adcorre_golden.json";
  if (path.empty() || !std::ifstream(path)) return json();
  std::ifstream in(path);
  return json::parse(in);
}

torch::Tensor vec(const json& j, torch::ScalarType t) {
  return torch::tensor(j.get<std::vector<double>>(), torch::kDouble).to(t);
}

struct Case {
  torch::Tensor emb, logits, labels, conf;
  loss::AdCorreOptions opts;
};

Case make_case(const json& c, torch::ScalarType t) {
  const int64_t B = c["B"], k = c["k"], d = c["d"], C = c["C"];
  Case r;
  // On the test device (ADCORRE_TEST_DEVICE): the golden values hold there too.
  const torch::Device dev(test::test_device());
  r.emb = vec(c["embeddings"], t).view({k, B, d}).to(dev);
  r.logits = vec(c["logits"], t).view({B, C}).to(dev);
  r.labels = torch::tensor(c["labels"].get<std::vector<int64_t>>(), torch::kLong).to(dev);
  r.conf = vec(c["confusion"], torch::kDouble).view({C, C}).to(dev);
  r.opts.num_classes = static_cast<int>(C);
  r.opts.adaptive = c["adaptive"];
  r.opts.lambda_ce = c["weights"]["ce"];
  r.opts.lambda_fd = c["weights"]["fd"];
  r.opts.lambda_md = c["weights"]["md"];
  r.opts.lambda_ed = c["weights"]["ed"];
  return r;
}

void check_case(const json& c, torch::ScalarType t, double tol) {
  SCOPED_TRACE(c["name"].get<std::string>() + (t == torch::kDouble ? " float64" : " float32"));
  auto cs = make_case(c, t);
  cs.emb.requires_grad_(true);
  cs.logits.requires_grad_(true);
  auto terms = loss::adcorre_loss(cs.logits, cs.emb, cs.labels, cs.conf, cs.opts);
  const auto& e = c["expected"];
  auto close = [&](const torch::Tensor& got, double want, const char* name) {
    double g = got.item<double>();
    double err = std::abs(g - want) / std::max(std::abs(want), 1e-12);
    if (want == 0) err = std::abs(g);
    EXPECT_LE(err, tol) << name << ": got " << g << " want " << want;
  };
  close(terms.ce, e["ce"], "ce");
  close(terms.fd, e["fd"], "fd");
  close(terms.md, e["md"], "md");
  close(terms.ed, e["ed"], "ed");
  close(terms.total, e["total"], "total");
  terms.total.backward();
  EXPECT_LE(test::rel_error(cs.emb.grad().flatten(), vec(c["grad_embeddings"], torch::kDouble)), tol) << "grad embeddings";
  EXPECT_LE(test::rel_error(cs.logits.grad().flatten(), vec(c["grad_logits"], torch::kDouble)), tol) << "grad logits";
}

}  // namespace

TEST(AdCorreLoss, GoldenFloat64) {
  auto g = load_golden();
  if (g.is_null()) GTEST_SKIP() << "golden file not found (set ADCORRE_GOLDEN or provide ../shared)";
  ASSERT_GE(g["cases"].size(), 1u);
  for (auto& c : g["cases"]) check_case(c, torch::kDouble, 1e-9);
}

TEST(AdCorreLoss, GoldenFloat32) {
  auto g = load_golden();
  if (g.is_null()) GTEST_SKIP() << "golden file not found";
  for (auto& c : g["cases"]) check_case(c, torch::kFloat, 1e-4);
}

TEST(ConfusionWindow, GoldenSequence) {
  auto g = load_golden();
  if (g.is_null()) GTEST_SKIP() << "golden file not found";
  auto& cw = g["confusion_window"];
  const int C = cw["C"];
  loss::ConfusionWindow w(C, cw["window"]);
  ASSERT_EQ(cw["batches"].size(), cw["expected_after_each_batch"].size());
  for (size_t b = 0; b < cw["batches"].size(); ++b) {
    w.record(cw["batches"][b]["gt"].get<std::vector<int64_t>>(), cw["batches"][b]["pred"].get<std::vector<int64_t>>());
    auto want = vec(cw["expected_after_each_batch"][b], torch::kDouble).view({C, C});
    EXPECT_LE((w.matrix() - want).abs().max().item<double>(), 1e-12) << "after batch " << b;
  }
}

TEST(ConfusionWindow, SaveRestoreIsExact) {
  loss::ConfusionWindow a(4, 7), b(4, 7);
  torch::manual_seed(1);
  for (int i = 0; i < 5; ++i) a.record(torch::randint(4, {3}), torch::randint(4, {3}));
  b.load_state(a.state());
  EXPECT_TRUE(torch::equal(a.matrix(), b.matrix()));
  // They stay identical as more pairs push the oldest out.
  auto l = torch::randint(4, {5}), p = torch::randint(4, {5});
  a.record(l, p);
  b.record(l, p);
  EXPECT_TRUE(torch::equal(a.state(), b.state()));
  loss::ConfusionWindow wrong(5, 7);
  EXPECT_THROW(wrong.load_state(a.state()), Error);
}

TEST(ConfusionWindow, AbsentClassHasZeroRowAndMergeSumsCounts) {
  loss::ConfusionWindow a(3, 10), b(3, 10);
  a.record(std::vector<int64_t>{0, 0, 1}, std::vector<int64_t>{0, 1, 1});
  b.record(std::vector<int64_t>{0, 1}, std::vector<int64_t>{0, 0});
  auto m = a.matrix();
  EXPECT_EQ(m[2].abs().sum().item<double>(), 0.0);
  auto merged = loss::ConfusionWindow::matrix_from_counts(a.counts() + b.counts());
  EXPECT_NEAR(merged[0][0].item<double>(), 2.0 / 3.0, 1e-12);
  EXPECT_NEAR(merged[1][0].item<double>(), 0.5, 1e-12);
  EXPECT_THROW(a.record(std::vector<int64_t>{3}, std::vector<int64_t>{0}), Error);
}

// Finite differences of each term separately, in float64.
TEST(AdCorreLoss, FiniteDifferenceEachTerm) {
  torch::manual_seed(7);
  const int64_t k = 3, B = 6, d = 5, C = 4;
  auto labels = torch::tensor({0, 1, 1, 2, 3, 0}, torch::kLong);
  auto conf = torch::rand({C, C}, torch::kDouble);
  conf = conf / conf.sum(1, true);
  auto base = torch::randn({k, B, d}, torch::kDouble);
  using Fn = std::function<torch::Tensor(const torch::Tensor&)>;
  std::vector<std::pair<std::string, Fn>> terms = {
      {"fd", [&](const torch::Tensor& e) { return loss::fd_term(e, labels, conf); }},
      {"fd_plain", [&](const torch::Tensor& e) { return loss::fd_term(e, labels, std::nullopt); }},
      {"md", [&](const torch::Tensor& e) { return loss::md_term(e, labels); }},
      {"ed", [&](const torch::Tensor& e) { return loss::ed_term(e); }},
  };
  for (auto& [name, fn] : terms) {
    SCOPED_TRACE(name);
    auto e = base.clone().requires_grad_(true);
    fn(e).backward();
    auto analytic = e.grad().clone();
    auto numeric = torch::zeros_like(base);
    const double h = 1e-6;
    auto flat = base.flatten();
    for (int64_t i = 0; i < flat.numel(); ++i) {
      auto p = base.clone(), m = base.clone();
      p.view(-1)[i] += h;
      m.view(-1)[i] -= h;
      numeric.view(-1)[i] = (fn(p).item<double>() - fn(m).item<double>()) / (2 * h);
    }
    EXPECT_GT(analytic.abs().max().item<double>(), 0.0);
    EXPECT_LE(test::rel_error(analytic, numeric), 1e-5);
  }
}

// FD, MD and ED each pass a nonzero gradient to a network's parameters.
TEST(AdCorreLoss, EachTermTrainsTheNetwork) {
  torch::manual_seed(3);
  const int64_t B = 8, k = 3, d = 6, C = 3;
  auto x = torch::randn({B, 10});
  auto labels = torch::tensor({0, 1, 2, 0, 1, 2, 0, 1}, torch::kLong);
  for (const char* term : {"fd", "md", "ed"}) {
    SCOPED_TRACE(term);
    torch::nn::Linear net(10, k * d);
    auto e = net->forward(x).view({B, k, d}).transpose(0, 1);
    e = e / e.norm(2, -1, true);
    loss::AdCorreOptions o;
    o.num_classes = C;
    o.lambda_ce = 0;
    o.lambda_fd = std::string(term) == "fd";
    o.lambda_md = std::string(term) == "md";
    o.lambda_ed = std::string(term) == "ed";
    loss::AdCorreLoss L(o);
    auto logits = torch::randn({B, C});
    auto t = L.forward(logits, e, labels);
    t.total.backward();
    EXPECT_GT(net->weight.grad().abs().sum().item<double>(), 0.0);
  }
}

TEST(AdCorreLoss, EdgeCases) {
  torch::manual_seed(5);
  loss::AdCorreOptions o;
  o.num_classes = 3;
  // B = 1
  {
    loss::AdCorreLoss L(o);
    auto e = torch::nn::functional::normalize(torch::randn({2, 1, 4}), torch::nn::functional::NormalizeFuncOptions().dim(-1));
    auto t = L.forward(torch::randn({1, 3}), e, torch::tensor({1}, torch::kLong));
    EXPECT_TRUE(std::isfinite(t.total.item<double>()));
    EXPECT_EQ(t.md.item<double>(), 0.0);
  }
  // one class in the batch, k = 1
  {
    loss::AdCorreLoss L(o);
    auto e = torch::randn({1, 5, 4}).requires_grad_(true);
    auto t = L.forward(torch::randn({5, 3}), e, torch::full({5}, 2, torch::kLong));
    EXPECT_EQ(t.md.item<double>(), 0.0);
    EXPECT_EQ(t.ed.item<double>(), 0.0);
    t.total.backward();
    EXPECT_TRUE(torch::isfinite(e.grad()).all().item<bool>());
  }
  // constant embedding rows correlate 0, not NaN
  {
    auto e = torch::ones({2, 4, 3}, torch::kDouble);
    auto r = loss::corr_rows(e[0]);
    EXPECT_TRUE(torch::isfinite(r).all().item<bool>());
    EXPECT_EQ(r.abs().max().item<double>(), 0.0);
  }
  // NaN / Inf inputs are a clear error
  {
    loss::AdCorreLoss L(o);
    auto logits = torch::randn({4, 3});
    logits[1][2] = std::numeric_limits<float>::quiet_NaN();
    EXPECT_THROW(L.forward(logits, torch::randn({2, 4, 5}), torch::tensor({0, 1, 2, 0}, torch::kLong)), Error);
    auto e = torch::randn({2, 4, 5});
    e[0][0][0] = std::numeric_limits<float>::infinity();
    EXPECT_THROW(L.forward(torch::randn({4, 3}), e, torch::tensor({0, 1, 2, 0}, torch::kLong)), Error);
  }
}

TEST(AdCorreLoss, CeOnlySkipsTheTerms) {
  loss::AdCorreOptions o;
  o.num_classes = 3;
  o.lambda_fd = o.lambda_md = o.lambda_ed = 0;
  loss::AdCorreLoss L(o);
  auto logits = torch::randn({4, 3});
  auto labels = torch::tensor({0, 1, 2, 0}, torch::kLong);
  auto t = L.forward(logits, torch::randn({2, 4, 5}), labels);
  auto ce = torch::nn::functional::cross_entropy(logits, labels);
  EXPECT_NEAR(t.total.item<double>(), 50.0 / 3 * ce.item<double>(), 1e-5);
}
