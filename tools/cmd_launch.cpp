// adcorre launch: starts the ranks of a data-parallel job on this machine
// (torchrun's job for one node).
//
//   adcorre launch --nproc 2 -- train --train data/ --out runs/x ...
//
// Each rank gets RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR
// and MASTER_PORT in its environment. A command whose first word has no '/'
// (or "adcorre") is an adcorre command line (this binary runs it, with
// `--distributed` added to `train`, and the global `--threads cores/nproc`
// unless --threads is given); a path is a program to run. SIGINT/SIGTERM/SIGHUP are forwarded to every rank
// (a second one kills them). When a rank fails, the others get SIGTERM, then
// SIGKILL after --grace seconds, and launch exits with the failed rank's
// code (128 + signal when it was killed). Ranks get SIGTERM if launch itself
// dies.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "adcorre/util/error.h"
#include "cli.h"

extern char** environ;

namespace {

struct LaunchCli {
  int nproc = 1, nnodes = 1, node_rank = 0, master_port = 0;
  std::string master_addr = "127.0.0.1";
  double grace = 10;
  std::vector<std::string> command;
};

volatile sig_atomic_t g_signal = 0;
volatile sig_atomic_t g_signal_count = 0;
void on_signal(int sig) {
  g_signal = sig;
  g_signal_count = g_signal_count + 1;
}

int free_local_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw adcorre::Error(std::string("launch: socket(): ") + std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(fd);
    throw adcorre::Error(std::string("launch: cannot find a free port: ") + std::strerror(errno));
  }
  close(fd);
  return ntohs(a.sin_port);
}

std::string self_path() {
  std::vector<char> buf(4096);
  ssize_t n = readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  if (n <= 0) throw adcorre::Error("launch: cannot find its own executable (/proc/self/exe)");
  return std::string(buf.data(), static_cast<size_t>(n));
}

bool has_arg(const std::vector<std::string>& v, const std::string& a) {
  for (auto& x : v)
    if (x == a || x.rfind(a + "=", 0) == 0) return true;
  return false;
}

// Index of the subcommand in an adcorre command line (after the global
// options of tools/main.cpp), or -1.
int subcommand_index(const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (a == "--threads" || a == "--device" || a == "--seed") {
      ++i;  // its value
      continue;
    }
    if (!a.empty() && a[0] == '-') continue;
    return static_cast<int>(i);
  }
  return -1;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int s = WTERMSIG(status);
    return "was killed by signal " + std::to_string(s) + " (" + strsignal(s) + ")";
  }
  return "ended with status " + std::to_string(status);
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

int run_launch(LaunchCli& o) {
  using adcorre::Error;
  if (o.nproc < 1) throw Error("launch: --nproc must be >= 1");
  if (o.nnodes < 1) throw Error("launch: --nnodes must be >= 1");
  if (o.node_rank < 0 || o.node_rank >= o.nnodes)
    throw Error("launch: --node-rank must be in [0, " + std::to_string(o.nnodes - 1) + "]");
  if (o.command.empty()) throw Error("launch needs a command after --, e.g. adcorre launch --nproc 2 -- train ...");
  if (o.master_port == 0) {
    if (o.nnodes > 1) throw Error("launch: --master-port is required with --nnodes > 1 (the same on every machine)");
    o.master_port = free_local_port();
  }
  const int world = o.nproc * o.nnodes;

  // argv of every rank.
  std::vector<std::string> argv;
  if (o.command[0] == "adcorre") o.command.erase(o.command.begin());  // `-- adcorre train ...` reads the same
  if (o.command.empty()) throw Error("launch needs a command after --, e.g. adcorre launch --nproc 2 -- train ...");
  const bool subcommand = o.command[0].find('/') == std::string::npos;
  if (subcommand) {
    argv.push_back(self_path());
    if (!has_arg(o.command, "--threads")) {
      // Ranks share this machine's cores (torchrun sets OMP_NUM_THREADS=1 for the same reason).
      const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
      argv.push_back("--threads");
      argv.push_back(std::to_string(std::max(1u, cores / static_cast<unsigned>(o.nproc))));
    }
    argv.insert(argv.end(), o.command.begin(), o.command.end());
    const int sub = subcommand_index(o.command);
    if (sub >= 0 && o.command[sub] == "train" && !has_arg(o.command, "--distributed")) argv.push_back("--distributed");
  } else {
    argv = o.command;
  }
  std::string shown;
  for (auto& a : argv) shown += (shown.empty() ? "" : " ") + a;
  std::cerr << "launch: " << o.nproc << " rank(s) of " << world << " on this machine (ranks "
            << o.node_rank * o.nproc << ".." << (o.node_rank + 1) * o.nproc - 1 << "), rendezvous "
            << o.master_addr << ":" << o.master_port << ": " << shown << "\n";

  // Everything the children need is built before fork (only async-signal-safe
  // calls happen between fork and exec).
  std::vector<std::vector<std::string>> envs(o.nproc);
  for (int lr = 0; lr < o.nproc; ++lr) {
    auto& e = envs[lr];
    for (char** p = environ; *p; ++p) {
      std::string kv = *p;
      bool ours = false;
      for (const char* k : {"RANK=", "WORLD_SIZE=", "LOCAL_RANK=", "LOCAL_WORLD_SIZE=", "MASTER_ADDR=", "MASTER_PORT="})
        if (kv.rfind(k, 0) == 0) ours = true;
      if (!ours) e.push_back(kv);
    }
    e.push_back("RANK=" + std::to_string(o.node_rank * o.nproc + lr));
    e.push_back("WORLD_SIZE=" + std::to_string(world));
    e.push_back("LOCAL_RANK=" + std::to_string(lr));
    e.push_back("LOCAL_WORLD_SIZE=" + std::to_string(o.nproc));
    e.push_back("MASTER_ADDR=" + o.master_addr);
    e.push_back("MASTER_PORT=" + std::to_string(o.master_port));
  }
  auto to_c = [](std::vector<std::string>& v) {
    std::vector<char*> c;
    for (auto& s : v) c.push_back(s.data());
    c.push_back(nullptr);
    return c;
  };
  auto c_argv = to_c(argv);

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaction(s, &sa, nullptr);

  const pid_t launcher = getpid();
  std::vector<pid_t> pids(o.nproc, -1);
  std::vector<bool> alive(o.nproc, false);
  int n_alive = 0;
  for (int lr = 0; lr < o.nproc; ++lr) {
    auto c_env = to_c(envs[lr]);
    const pid_t pid = fork();
    if (pid < 0) throw Error(std::string("launch: fork(): ") + std::strerror(errno));
    if (pid == 0) {
      // Own process group: signals reach a rank (and anything it starts)
      // through the launcher only, once.
      setpgid(0, 0);
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != launcher) _exit(127);
      struct sigaction dfl {};
      dfl.sa_handler = SIG_DFL;
      for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaction(s, &dfl, nullptr);
      execvpe(c_argv[0], c_argv.data(), c_env.data());
      const char* msg = "launch: cannot execute the rank's command\n";
      (void)!write(2, msg, strlen(msg));
      _exit(127);
    }
    setpgid(pid, pid);
    pids[lr] = pid;
    alive[lr] = true;
    ++n_alive;
  }

  auto signal_all = [&](int sig) {
    for (int lr = 0; lr < o.nproc; ++lr)
      if (alive[lr]) kill(-pids[lr], sig);
  };
  int result = 0;
  bool stopping = false;
  sig_atomic_t forwarded = 0;
  auto kill_at = std::chrono::steady_clock::time_point::max();
  while (n_alive > 0) {
    if (g_signal_count > forwarded) {
      const int sig = g_signal_count > 1 ? SIGKILL : g_signal;
      forwarded = g_signal_count;
      std::cerr << "launch: got signal " << g_signal << " (" << strsignal(g_signal) << "), "
                << (sig == SIGKILL ? "killing" : "forwarding it to") << " the ranks\n";
      signal_all(sig);
      if (result == 0) result = 128 + g_signal;
      if (!stopping) kill_at = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(o.grace * 1000));
      stopping = true;
    }
    int status = 0;
    const pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      for (int lr = 0; lr < o.nproc; ++lr) {
        if (pids[lr] != pid || !alive[lr]) continue;
        alive[lr] = false;
        --n_alive;
        const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (!ok && !stopping) {
          std::cerr << "launch: rank " << o.node_rank * o.nproc + lr << " " << describe_status(status)
                    << "; stopping the other ranks\n";
          result = std::max(1, exit_code_of(status));
          stopping = true;
          signal_all(SIGTERM);
          kill_at = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(o.grace * 1000));
        } else if (!ok && result == 0) {
          result = std::max(1, exit_code_of(status));
        }
      }
      continue;
    }
    if (stopping && std::chrono::steady_clock::now() >= kill_at) {
      std::cerr << "launch: ranks still running " << o.grace << " s after SIGTERM; killing them\n";
      signal_all(SIGKILL);
      kill_at = std::chrono::steady_clock::time_point::max();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return result;
}

adcorre::cli::Registrar register_launch({"launch", "start N ranks of a distributed command here (torchrun-style environment)",
                             [](CLI::App& app) {
  auto o = std::make_shared<LaunchCli>();
  app.add_option("--nproc", o->nproc, "ranks on this machine (one per GPU, or cores / threads-per-rank on CPU)")
      ->required();
  app.add_option("--nnodes", o->nnodes, "machines in the job")->capture_default_str();
  app.add_option("--node-rank", o->node_rank, "this machine's index, 0 .. nnodes-1 (0 hosts the rendezvous)")
      ->capture_default_str();
  app.add_option("--master-addr", o->master_addr, "address of machine 0, reachable from every machine")
      ->capture_default_str();
  app.add_option("--master-port", o->master_port, "rendezvous port (0: a free one; required with --nnodes > 1)")
      ->capture_default_str();
  app.add_option("--grace", o->grace, "seconds between SIGTERM and SIGKILL when stopping the ranks")
      ->capture_default_str();
  app.add_option("command", o->command, "after --: an adcorre subcommand and its options, or a program")->required();
  return [o] { return run_launch(*o); };
}});

}  // namespace
