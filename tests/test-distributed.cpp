// Distributed training on c10d/Gloo over loopback, with real processes.
//
// This executable is also its own worker: `test-distributed --worker NAME DIR`
// runs one rank of a scenario (RANK, WORLD_SIZE, MASTER_* come from
// `adcorre launch` or from the test), so the tests exercise the launcher, the
// rendezvous, the process group and the trainer as a user would.
//
// The equality test needs a model whose per-sample outputs do not depend on
// the rest of the batch: batch-norm in training mode normalises with batch
// statistics (two ranks with B/2 see other statistics than one process with
// B), and the Ad-Corre FD/MD terms compare the samples of a batch with each
// other. So it uses a test-only conv + linear net without batch-norm and the
// CE loss (a mean over the batch: averaging the two half-batch gradients
// gives the full-batch gradient exactly). The trainer's own distributed runs
// (fer-tiny, Ad-Corre loss, batch-norm) are tested for completing, for
// group-wide resume being exact, and for their outputs.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

extern char** environ;

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "adcorre/data/loader.h"
#include "adcorre/loss/confusion_window.h"
#include "adcorre/models/model_file.h"
#include "adcorre/train/distributed.h"
#include "adcorre/util/error.h"
#include "synthetic_faces.h"
#include "test_util.h"

using namespace adcorre;
namespace sfs = std::filesystem;

namespace {

std::string g_self;  // path of this executable

// ---------------------------------------------------------------- workers

constexpr int kSamples = 96, kBatch = 16, kEpochs = 2, kWindow = 20, kClasses = 3;

struct TinyNetImpl : torch::nn::Module {
  torch::nn::Conv2d conv{nullptr};
  torch::nn::Linear fc{nullptr};
  TinyNetImpl() {
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 4, 3)));
    fc = register_module("fc", torch::nn::Linear(4 * 6 * 6, kClasses));
  }
  torch::Tensor forward(const torch::Tensor& x) { return fc(torch::relu(conv(x)).flatten(1)); }
};
TORCH_MODULE(TinyNet);

// Data-parallel SGD by hand, exactly as the trainer does it: broadcast, own
// shard of each epoch, local mean loss, averaged gradients, same optimizer.
int worker_equality(const std::string& dir) {
  torch::set_num_threads(1);
  train::DistributedOptions opts;
  opts.timeout_s = 60;
  opts.bucket_mb = 1000.0 / (1 << 20);  // ~1 kB buckets: this net's 4 tensors need 3
  auto coll = train::make_distributed_collective_from_env("cpu", opts);
  const int world = coll->world_size(), rank = coll->rank();
  const int local_batch = kBatch / world;

  torch::manual_seed(7);
  data::ImageCache cache;
  auto x_all = torch::randn({kSamples, 1, 8, 8});
  cache.labels = torch::randint(0, kClasses, {kSamples}, torch::kLong);

  torch::manual_seed(100 + rank);  // different initial weights on every rank: the broadcast must fix them
  TinyNet net;
  {
    std::vector<at::Tensor> ps;
    for (auto& p : net->parameters()) ps.push_back(p.data());
    coll->broadcast(ps);
  }
  std::vector<at::Tensor> initial;
  for (auto& p : net->parameters()) initial.push_back(p.detach().clone());
  torch::save(initial, (sfs::path(dir) / ("init-" + std::to_string(world) + "-" + std::to_string(rank) + ".pt")).string());
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(1e-2));
  loss::ConfusionWindow window(kClasses, (kWindow + world - 1) / world);
  std::vector<at::Tensor> global_counts;
  std::ofstream seen(sfs::path(dir) / ("indices-" + std::to_string(world) + "-" + std::to_string(rank) + ".txt"));
  for (int epoch = 0; epoch < kEpochs; ++epoch) {
    data::EpochPlan plan;
    plan.seed = 3;
    plan.epoch = epoch;
    plan.rank = rank;
    plan.world = world;
    auto order = torch::tensor(data::epoch_indices(cache, plan), torch::kLong);
    const int64_t steps = order.size(0) / local_batch;
    for (int64_t s = 0; s < steps; ++s) {
      auto idx = order.slice(0, s * local_batch, (s + 1) * local_batch);
      for (int64_t i = 0; i < idx.size(0); ++i) seen << epoch << " " << s << " " << idx[i].item<int64_t>() << "\n";
      auto y = cache.labels.index_select(0, idx);
      auto logits = net->forward(x_all.index_select(0, idx));
      auto loss = torch::nn::functional::cross_entropy(logits, y);
      opt.zero_grad();
      loss.backward();
      std::vector<at::Tensor> grads;
      for (auto& p : net->parameters()) grads.push_back(p.grad());
      coll->average_gradients(grads);
      opt.step();
      window.record(y, logits.detach().argmax(1));
      auto c = window.counts();
      coll->sum(c);
      global_counts.push_back(c);
    }
  }
  std::vector<at::Tensor> params;
  for (auto& p : net->parameters()) params.push_back(p.detach().clone());
  torch::save(params, (sfs::path(dir) / ("params-" + std::to_string(world) + "-" + std::to_string(rank) + ".pt")).string());
  torch::save(global_counts, (sfs::path(dir) / ("window-" + std::to_string(world) + "-" + std::to_string(rank) + ".pt")).string());
  coll->barrier();
  return 0;
}

// Rank 1 leaves after a few all-reduces (dies, or stalls without exiting);
// rank 0 keeps reducing and must fail with a clear error, not hang.
int worker_peer_lost(const std::string& how, double timeout_s) {
  torch::set_num_threads(1);
  train::DistributedOptions opts;
  opts.timeout_s = timeout_s;
  auto coll = train::make_distributed_collective_from_env("cpu", opts);
  auto t = torch::ones({1000});
  for (int i = 0;; ++i) {
    if (coll->rank() == 1 && i == 3) {
      if (how == "die") raise(SIGKILL);
      std::this_thread::sleep_for(std::chrono::seconds(600));  // stall
    }
    coll->sum(t);
    t.fill_(1);
    if (i > 100000) return 3;  // never reached when the failure is detected
  }
}

// Rank 1 fails right away; rank 0 would sleep for minutes (not in a
// collective): the launcher must stop it.
int worker_one_fails(const std::string& dir) {
  const char* r = std::getenv("RANK");
  const int rank = r ? std::atoi(r) : -1;
  std::ofstream(sfs::path(dir) / ("pid-" + std::to_string(rank))) << getpid() << "\n";
  if (rank == 1) {
    // Fail only once rank 0 is up (and has said who it is).
    for (int i = 0; i < 1000 && !sfs::exists(sfs::path(dir) / "pid-0"); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return 3;
  }
  std::this_thread::sleep_for(std::chrono::seconds(300));
  return 0;
}

// Both ranks sleep, reporting their pids (signal forwarding).
int worker_sleep(const std::string& dir) {
  const char* r = std::getenv("RANK");
  std::ofstream(sfs::path(dir) / ("pid-" + std::string(r ? r : "x"))) << getpid() << "\n";
  std::this_thread::sleep_for(std::chrono::seconds(300));
  return 0;
}

int worker_main(int argc, char** argv) {
  try {
    const std::string name = argc > 2 ? argv[2] : "", dir = argc > 3 ? argv[3] : "";
    if (name == "equality") return worker_equality(dir);
    if (name == "die") return worker_peer_lost("die", 60);
    if (name == "stall") return worker_peer_lost("stall", 3);
    if (name == "one-fails") return worker_one_fails(dir);
    if (name == "sleep") return worker_sleep(dir);
    std::cerr << "unknown worker " << name << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}

// ---------------------------------------------------------------- helpers

std::string q(const std::string& s) { return "'" + s + "'"; }

// Starts `argv` with extra environment variables; returns its pid. Its
// stderr goes to `err_file`.
pid_t spawn(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env,
            const std::string& err_file) {
  std::vector<std::string> env;
  for (char** p = environ; *p; ++p) env.push_back(*p);
  env.insert(env.end(), extra_env.begin(), extra_env.end());
  std::vector<char*> a, e;
  for (auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
  a.push_back(nullptr);
  for (auto& s : env) e.push_back(const_cast<char*>(s.c_str()));
  e.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) dup2(fd, 2);
    execve(a[0], a.data(), e.data());
    _exit(127);
  }
  return pid;
}

// Waits for `pid` at most `limit_s`; returns the wait status, or -1 on timeout
// (the process is then killed).
int wait_for(pid_t pid, double limit_s, double* seconds = nullptr) {
  auto t0 = std::chrono::steady_clock::now();
  for (;;) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      if (seconds) *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      return status;
    }
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > limit_s) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

bool process_exists(pid_t pid) { return kill(pid, 0) == 0; }

pid_t read_pid(const std::string& path) {
  for (int i = 0; i < 500 && !sfs::exists(path); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::ifstream in(path);
  pid_t p = -1;
  in >> p;
  return p;
}

std::vector<at::Tensor> load_tensors(const std::string& path) {
  std::vector<at::Tensor> v;
  torch::load(v, path);
  return v;
}

// A port free right now (the launcher does the same when not told one).
int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

}  // namespace

// ---------------------------------------------------------------- tests

TEST(Distributed, BucketPlanGroupsByDtypeAndSize) {
  std::vector<at::Tensor> ts{torch::zeros({100}), torch::zeros({3}, torch::kLong), torch::zeros({100}),
                             torch::zeros({300}), torch::zeros({2}, torch::kLong), torch::zeros({10})};
  auto plan = train::plan_buckets(ts, 1000);  // 1000 bytes = 250 floats
  // float tensors first (the first dtype seen), each bucket closed when the
  // next tensor would overflow it; then the long ones.
  std::vector<std::vector<size_t>> expected{{0, 2}, {3}, {5}, {1, 4}};
  EXPECT_EQ(plan, expected);
  // Everything in one bucket when it fits.
  auto one = train::plan_buckets({torch::zeros({10}), torch::zeros({10})}, 25 << 20);
  EXPECT_EQ(one.size(), 1u);
}

TEST(Distributed, EnvironmentErrorsNameTheVariable) {
  unsetenv("RANK");
  setenv("WORLD_SIZE", "2", 1);
  try {
    train::distributed_env_from_environment();
    FAIL() << "no error without RANK";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("RANK"), std::string::npos) << e.what();
  }
  setenv("RANK", "2", 1);
  try {
    train::distributed_env_from_environment();
    FAIL() << "RANK 2 of 2 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("RANK='2'"), std::string::npos) << e.what();
  }
  setenv("RANK", "1", 1);
  setenv("MASTER_PORT", "http", 1);
  EXPECT_THROW(train::distributed_env_from_environment(), Error);
  unsetenv("MASTER_PORT");
  auto env = train::distributed_env_from_environment();
  EXPECT_EQ(env.rank, 1);
  EXPECT_EQ(env.world_size, 2);
  EXPECT_EQ(env.master_port, 29500);
  unsetenv("RANK");
  unsetenv("WORLD_SIZE");
}

// 2 ranks with batch B/2 each == 1 process with batch B, step for step.
TEST(Distributed, TwoRanksWithHalfBatchesEqualOneProcess) {
  test::TempDir tmp;
  const std::string launch = q(test::adcorre_binary()) + " launch --grace 2 --nproc ";
  const std::string worker = " -- " + q(g_self) + " --worker equality " + q(tmp.path.string());
  std::string out;
  ASSERT_EQ(test::run_command(launch + "1" + worker, &out, true), 0) << out;
  ASSERT_EQ(test::run_command(launch + "2" + worker, &out, true), 0) << out;

  auto single = load_tensors(tmp / "params-1-0.pt");
  auto r0 = load_tensors(tmp / "params-2-0.pt");
  auto r1 = load_tensors(tmp / "params-2-1.pt");
  ASSERT_EQ(single.size(), r0.size());
  for (size_t i = 0; i < single.size(); ++i) {
    EXPECT_TRUE(torch::equal(r0[i], r1[i])) << "ranks disagree on parameter " << i;
    EXPECT_LT(test::rel_error(r0[i], single[i]), 1e-4) << "parameter " << i;
  }
  // The broadcast gave both ranks the same start, and training moved it (so
  // the equality is not "nothing happened").
  auto i0 = load_tensors(tmp / "init-2-0.pt"), i1 = load_tensors(tmp / "init-2-1.pt");
  for (size_t i = 0; i < i0.size(); ++i) {
    EXPECT_TRUE(torch::equal(i0[i], i1[i])) << "parameter " << i << " differs after the broadcast";
    EXPECT_GT(test::rel_error(r0[i], i0[i]), 1e-3) << "parameter " << i << " did not train";
  }
  // The window counts summed over ranks are the single process's window.
  auto w1 = load_tensors(tmp / "window-1-0.pt");
  auto w2 = load_tensors(tmp / "window-2-0.pt");
  ASSERT_EQ(w1.size(), w2.size());
  for (size_t i = 0; i < w1.size(); ++i) EXPECT_TRUE(torch::equal(w1[i], w2[i])) << "step " << i;

  // Shards: disjoint within each epoch, and at every step the two ranks'
  // samples are exactly the single process's batch.
  auto read_seen = [&](const std::string& f) {
    std::map<std::pair<int, int>, std::set<int64_t>> by_step;
    std::ifstream in(tmp / f);
    int e, s;
    int64_t i;
    while (in >> e >> s >> i) by_step[{e, s}].insert(i);
    return by_step;
  };
  auto one = read_seen("indices-1-0.txt"), a = read_seen("indices-2-0.txt"), b = read_seen("indices-2-1.txt");
  ASSERT_EQ(one.size(), static_cast<size_t>(kEpochs * (kSamples / kBatch)));
  std::map<int, std::set<int64_t>> epoch_a, epoch_b;
  for (auto& [key, batch] : one) {
    auto& ia = a[key];
    auto& ib = b[key];
    EXPECT_EQ(ia.size(), static_cast<size_t>(kBatch / 2));
    std::set<int64_t> u(ia.begin(), ia.end());
    u.insert(ib.begin(), ib.end());
    EXPECT_EQ(u, batch) << "epoch " << key.first << " step " << key.second;
    epoch_a[key.first].insert(ia.begin(), ia.end());
    epoch_b[key.first].insert(ib.begin(), ib.end());
  }
  for (int e = 0; e < kEpochs; ++e) {
    for (auto i : epoch_a[e]) EXPECT_EQ(epoch_b[e].count(i), 0u) << "sample " << i << " on both ranks in epoch " << e;
    EXPECT_EQ(epoch_a[e].size() + epoch_b[e].size(), static_cast<size_t>(kSamples));
  }
}

// A rank that dies: the survivor fails with a clear error at once (closed
// sockets), well before its 60 s collective timeout.
TEST(Distributed, DeadRankEndsTheGroupWithAnError) {
  test::TempDir tmp;
  const std::string port = "MASTER_PORT=" + std::to_string(free_port());
  std::vector<pid_t> pids;
  for (int r = 0; r < 2; ++r)
    pids.push_back(spawn({g_self, "--worker", "die"},
                         {"RANK=" + std::to_string(r), "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", port},
                         tmp / ("err-" + std::to_string(r))));
  double secs = 0;
  const int st0 = wait_for(pids[0], 50, &secs);
  const int st1 = wait_for(pids[1], 5);
  ASSERT_NE(st0, -1) << "rank 0 hung after rank 1 died";
  ASSERT_TRUE(WIFEXITED(st0)) << "rank 0 crashed instead of reporting an error";
  EXPECT_EQ(WEXITSTATUS(st0), 1);
  EXPECT_TRUE(WIFSIGNALED(st1) && WTERMSIG(st1) == SIGKILL);
  const auto err = read_text(tmp / "err-0");
  EXPECT_NE(err.find("rank 0 of 2"), std::string::npos) << err;
  EXPECT_NE(err.find("failed"), std::string::npos) << err;
  EXPECT_LT(secs, 40) << err;
}

// A rank that stalls without exiting: the survivor fails after --dist-timeout (3 s).
TEST(Distributed, StalledRankTimesOut) {
  test::TempDir tmp;
  const std::string port = "MASTER_PORT=" + std::to_string(free_port());
  std::vector<pid_t> pids;
  for (int r = 0; r < 2; ++r)
    pids.push_back(spawn({g_self, "--worker", "stall"},
                         {"RANK=" + std::to_string(r), "WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", port},
                         tmp / ("err-" + std::to_string(r))));
  double secs = 0;
  const int st0 = wait_for(pids[0], 60, &secs);
  kill(pids[1], SIGKILL);
  wait_for(pids[1], 10);
  ASSERT_NE(st0, -1) << "rank 0 hung on a stalled peer";
  ASSERT_TRUE(WIFEXITED(st0));
  EXPECT_EQ(WEXITSTATUS(st0), 1);
  const auto err = read_text(tmp / "err-0");
  EXPECT_NE(err.find("rank 0 of 2"), std::string::npos) << err;
  EXPECT_GE(secs, 2.5) << "failed before the timeout: " << err;
}

// The launcher stops the group when one rank fails, with a non-zero code.
TEST(Distributed, LauncherStopsTheGroupWhenARankFails) {
  test::TempDir tmp;
  auto t0 = std::chrono::steady_clock::now();
  std::string out;
  const int rc = test::run_command(q(test::adcorre_binary()) + " launch --grace 2 --nproc 2 -- " + q(g_self) +
                                       " --worker one-fails " + q(tmp.path.string()),
                                   &out, true);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(rc, 3) << out;
  EXPECT_NE(out.find("rank 1 exited with code 3"), std::string::npos) << out;
  EXPECT_LT(secs, 60) << out;
  const pid_t p0 = read_pid(tmp / "pid-0");
  ASSERT_GT(p0, 0);
  EXPECT_FALSE(process_exists(p0)) << "rank 0 still running";
}

// SIGTERM to the launcher reaches every rank.
TEST(Distributed, LauncherForwardsSignals) {
  test::TempDir tmp;
  const pid_t launcher = spawn({test::adcorre_binary(), "launch", "--grace", "2", "--nproc", "2", "--", g_self,
                                "--worker", "sleep", tmp.path.string()},
                               {}, tmp / "launch-err");
  const pid_t p0 = read_pid(tmp / "pid-0"), p1 = read_pid(tmp / "pid-1");
  ASSERT_GT(p0, 0);
  ASSERT_GT(p1, 0);
  kill(launcher, SIGTERM);
  const int st = wait_for(launcher, 30);
  ASSERT_NE(st, -1) << read_text(tmp / "launch-err");
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 128 + SIGTERM);
  EXPECT_FALSE(process_exists(p0));
  EXPECT_FALSE(process_exists(p1));
}

// The real trainer on 2 ranks (fer-tiny, Ad-Corre loss, batch-norm, EMA):
// it completes, rank 0 alone writes the run, and resuming the group from its
// checkpoint gives exactly the weights of the uninterrupted group run.
TEST(Distributed, TrainerRunsOnTwoRanksAndResumesExactly) {
  test::TempDir tmp;
  const std::vector<std::string> classes{"angry", "happy", "sad"};
  test::write_synthetic_folders(tmp / "train", classes, 32, 1);
  test::write_synthetic_folders(tmp / "val", classes, 10, 2);
  const std::string launch = q(test::adcorre_binary()) + " -q launch --grace 2 --nproc 2 -- train ";
  const std::string common = " --train " + q(tmp / "train") + " --val " + q(tmp / "val") +
                             " --preset fer-tiny --batch-size 16 --augment light --ema 0.9 --threads 1"
                             " --run-seed 4 --dist-timeout 60 --checkpoint-every 2";
  std::string out;
  ASSERT_EQ(test::run_command(launch + common + " --epochs 2 --out " + q(tmp / "straight"), &out, true), 0) << out;
  // Rank 0 alone prints the result (one JSON line on stdout).
  size_t results = 0;
  for (size_t at = out.find("{\"best_epoch\""); at != std::string::npos; at = out.find("{\"best_epoch\"", at + 1)) ++results;
  EXPECT_EQ(results, 1u) << out;
  ASSERT_EQ(test::run_command(launch + common + " --epochs 1 --out " + q(tmp / "resumed"), &out, true), 0) << out;
  ASSERT_EQ(test::run_command(launch + " --resume " + q(tmp / "resumed") + " --epochs 2", &out, true), 0) << out;

  // Both runs report the same group-wide metrics per epoch (all but the
  // wall-clock seconds), the resumed one included.
  std::map<std::string, std::vector<nlohmann::json>> lines;
  for (auto* run : {"straight", "resumed"}) {
    std::ifstream in(sfs::path(tmp.path) / run / "metrics.jsonl");
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      auto j = nlohmann::json::parse(line);
      EXPECT_TRUE(j.contains("val_accuracy")) << line;
      j.erase("seconds");
      lines[run].push_back(j);
    }
    EXPECT_EQ(lines[run].size(), 2u) << run;
  }
  EXPECT_EQ(lines["straight"], lines["resumed"]);
  auto a = models::load_model(tmp / "straight/last.pt");
  auto b = models::load_model(tmp / "resumed/last.pt");
  for (auto& p : a.net->named_parameters()) EXPECT_TRUE(torch::equal(p.value(), b.net->named_parameters()[p.key()])) << p.key();
  for (auto& p : a.net->named_buffers()) EXPECT_TRUE(torch::equal(p.value(), b.net->named_buffers()[p.key()])) << p.key();

  // A checkpoint of 2 ranks is not resumed by 1 process.
  const int rc = test::run_command(q(test::adcorre_binary()) + " train --resume " + q(tmp / "resumed") + " --epochs 3",
                                   &out, true);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("group of 2"), std::string::npos) << out;
}

int main(int argc, char** argv) {
  g_self = sfs::canonical("/proc/self/exe").string();
  if (argc >= 2 && std::string(argv[1]) == "--worker") return worker_main(argc, argv);
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
