// The c10d collective: TCPStore rendezvous + ProcessGroupGloo (or NCCL).
// The process-group type is a template parameter so the same code serves
// Gloo and NCCL and does not depend on the c10d class hierarchy, which
// changed between LibTorch versions (ProcessGroup vs Backend).
#include "adcorre/train/distributed.h"

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <sstream>

#include <torch/torch.h>

#include "adcorre/util/error.h"
#include "adcorre/util/log.h"

#if defined(USE_C10D_GLOO) && defined(ADCORRE_HAVE_GLOO)
#define ADCORRE_C10D_GLOO 1
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#if defined(USE_C10D_NCCL)
#define ADCORRE_C10D_NCCL 1
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#if defined(ADCORRE_C10D_GLOO) || defined(ADCORRE_C10D_NCCL)
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

namespace adcorre::train {

namespace {

int env_int(const char* name, const int* fallback, int lo, int hi) {
  const char* v = std::getenv(name);
  if (!v || !*v) {
    if (fallback) return *fallback;
    throw Error(std::string("--distributed needs the environment variable ") + name +
                " (set by `adcorre launch` or torchrun; see docs/distributed.md)");
  }
  char* end = nullptr;
  errno = 0;
  long x = std::strtol(v, &end, 10);
  if (errno || *end || x < lo || x > hi)
    throw Error(std::string("environment variable ") + name + "='" + v + "' is not an integer in [" +
                std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return static_cast<int>(x);
}

std::string describe(const std::exception& e) {
  if (auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}

}  // namespace

DistributedEnv distributed_env_from_environment() {
  DistributedEnv env;
  env.world_size = env_int("WORLD_SIZE", nullptr, 1, 1 << 20);
  env.rank = env_int("RANK", nullptr, 0, env.world_size - 1);
  env.local_rank = env_int("LOCAL_RANK", &env.rank, 0, 1 << 20);
  const int default_port = 29500;
  env.master_port = env_int("MASTER_PORT", &default_port, 1, 65535);
  if (const char* a = std::getenv("MASTER_ADDR"); a && *a) env.master_addr = a;
  return env;
}

std::vector<std::vector<size_t>> plan_buckets(const std::vector<at::Tensor>& tensors, size_t bucket_bytes) {
  // One open bucket per (dtype, device); a bucket closes when the next tensor
  // would overflow it.
  std::vector<std::vector<size_t>> done;
  std::map<std::string, std::pair<std::vector<size_t>, size_t>> open;  // key -> (indices, bytes)
  std::vector<std::string> key_order;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    const std::string key = std::string(c10::toString(t.scalar_type())) + "@" + t.device().str();
    const size_t bytes = static_cast<size_t>(t.numel()) * t.element_size();
    auto it = open.find(key);
    if (it == open.end()) {
      it = open.emplace(key, std::make_pair(std::vector<size_t>{}, size_t{0})).first;
      key_order.push_back(key);
    }
    auto& [idx, used] = it->second;
    if (!idx.empty() && used + bytes > bucket_bytes) {
      done.push_back(std::move(idx));
      idx.clear();
      used = 0;
    }
    idx.push_back(i);
    used += bytes;
  }
  for (auto& k : key_order)
    if (!open[k].first.empty()) done.push_back(std::move(open[k].first));
  return done;
}

#if defined(ADCORRE_C10D_GLOO) || defined(ADCORRE_C10D_NCCL)

namespace {

template <class PG>
class C10dCollective final : public Collective {
 public:
  C10dCollective(DistributedEnv env, c10::intrusive_ptr<c10d::Store> store, c10::intrusive_ptr<PG> pg,
                 std::string backend, const DistributedOptions& opts, bool cpu_only)
      : env_(std::move(env)),
        store_(std::move(store)),
        pg_(std::move(pg)),
        backend_(std::move(backend)),
        timeout_s_(opts.timeout_s),
        bucket_bytes_(static_cast<size_t>(std::max(1.0, opts.bucket_mb * 1024 * 1024))),
        cpu_only_(cpu_only) {}

  int rank() const override { return env_.rank; }
  int world_size() const override { return env_.world_size; }

  void broadcast(std::vector<at::Tensor>& tensors) override {
    if (env_.world_size == 1) return;
    torch::NoGradGuard ng;
    run_bucketed(tensors, "broadcast", [this](std::vector<at::Tensor>& flat) {
      c10d::BroadcastOptions o;
      o.rootRank = 0;
      return pg_->broadcast(flat, o);
    }, /*average=*/false);
  }

  void average_gradients(std::vector<at::Tensor>& grads) override {
    if (env_.world_size == 1) return;
    torch::NoGradGuard ng;
    run_bucketed(grads, "gradient all-reduce", [this](std::vector<at::Tensor>& flat) {
      return pg_->allreduce(flat, c10d::AllreduceOptions{});
    }, /*average=*/true);
  }

  void sum(at::Tensor& t) override {
    if (env_.world_size == 1) return;
    torch::NoGradGuard ng;
    std::vector<at::Tensor> one{staged(t.contiguous())};
    wait(pg_->allreduce(one, c10d::AllreduceOptions{}), "sum all-reduce");
    if (!one[0].is_same(t)) t.copy_(one[0]);
  }

  void barrier() override {
    if (env_.world_size == 1) return;
    wait(pg_->barrier(), "barrier");
  }

 private:
  // Gloo works on CPU tensors here; NCCL on CUDA ones.
  at::Tensor staged(const at::Tensor& t) const {
    if (cpu_only_) return t.is_cpu() ? t : t.cpu();
    return t.is_cuda() ? t : t.to(torch::Device(torch::kCUDA));
  }

  template <class Launch>
  void run_bucketed(std::vector<at::Tensor>& tensors, const char* what, Launch launch, bool average) {
    std::vector<at::Tensor> defined;
    for (auto& t : tensors)
      if (t.defined() && t.numel() > 0) defined.push_back(t);
    const auto plan = plan_buckets(defined, bucket_bytes_);
    // Launch every bucket, then wait: the process group's worker threads
    // overlap the transfers of successive buckets.
    std::vector<std::vector<at::Tensor>> flats(plan.size());
    std::vector<decltype(launch(flats[0]))> works;
    for (size_t b = 0; b < plan.size(); ++b) {
      std::vector<at::Tensor> parts;
      for (size_t i : plan[b]) parts.push_back(defined[i].contiguous().view(-1));
      flats[b] = {staged(torch::cat(parts))};
      works.push_back(launch(flats[b]));
    }
    for (size_t b = 0; b < plan.size(); ++b) {
      wait(works[b], what);
      auto flat = flats[b][0];
      if (average) flat.div_(env_.world_size);
      int64_t off = 0;
      for (size_t i : plan[b]) {
        auto& t = defined[i];
        const int64_t n = t.numel();
        t.copy_(flat.slice(0, off, off + n).view(t.sizes()));
        off += n;
      }
    }
  }

  template <class Work>
  void wait(const Work& work, const char* what) {
    try {
      work->wait();
    } catch (const std::exception& e) {
      std::ostringstream msg;
      msg << "rank " << env_.rank << " of " << env_.world_size << ": " << what << " (" << backend_
          << ") failed: " << describe(e) << ". Another rank has probably exited, crashed or stalled "
          << "(collectives give up after --dist-timeout " << timeout_s_ << " s); its own log says why";
      throw Error(msg.str());
    }
  }

  DistributedEnv env_;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<PG> pg_;
  std::string backend_;
  double timeout_s_;
  size_t bucket_bytes_;
  bool cpu_only_;
};

bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1";
}

// LibTorch 2.4+ defaults the TCP store to its libuv backend; Debian 13's
// LibTorch 2.6 is built without libuv, so every rendezvous failed there. The
// classic backend is what 1.13 uses and all versions have. Chosen by whether
// the option exists, not by version number.
template <typename Options>
static auto use_classic_tcp_store(Options& o, int) -> decltype(o.useLibUV = false, void()) {
  o.useLibUV = false;
}
template <typename Options>
static void use_classic_tcp_store(Options&, long) {}

c10::intrusive_ptr<c10d::Store> rendezvous(const DistributedEnv& env, std::chrono::milliseconds timeout) {
  // Under torchrun (static rendezvous) its agent already hosts the store on
  // MASTER_PORT: every rank is a client, under the prefix torch.distributed uses.
  const char* agent_store = std::getenv("TORCHELASTIC_USE_AGENT_STORE");
  const bool use_agent_store = agent_store && std::string(agent_store) == "True";
  c10d::TCPStoreOptions so;
  so.port = static_cast<std::uint16_t>(env.master_port);
  so.isServer = env.rank == 0 && !use_agent_store;
  so.numWorkers = static_cast<std::size_t>(env.world_size);
  so.waitWorkers = !use_agent_store;
  so.timeout = timeout;
  use_classic_tcp_store(so, 0);
  try {
    c10::intrusive_ptr<c10d::Store> store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
    if (use_agent_store) {
      const char* attempt = std::getenv("TORCHELASTIC_RESTART_COUNT");
      store = c10::make_intrusive<c10d::PrefixStore>(std::string("/worker/attempt_") + (attempt ? attempt : "0"), store);
    }
    return store;
  } catch (const std::exception& e) {
    throw Error("rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size) +
                ": rendezvous at MASTER_ADDR=" + env.master_addr + " MASTER_PORT=" + std::to_string(env.master_port) +
                " failed: " + describe(e) +
                (so.isServer ? " (is the port free? did every rank start?)"
                             : " (is rank 0 running and the address reachable?)"));
  }
}

}  // namespace

std::shared_ptr<Collective> make_distributed_collective_from_env(const std::string& device,
                                                                 const DistributedOptions& opts) {
  if (!(opts.timeout_s > 0)) throw Error("--dist-timeout must be > 0 seconds");
  const DistributedEnv env = distributed_env_from_environment();
  const bool cuda = device.rfind("cuda", 0) == 0;
  std::string backend = opts.backend;
  if (backend == "auto") {
#ifdef ADCORRE_C10D_NCCL
    backend = cuda ? "nccl" : "gloo";
#else
    backend = "gloo";
#endif
  }
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(opts.timeout_s * 1000));
  log::info("distributed: rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size) +
            " (local rank " + std::to_string(env.local_rank) + "), " + backend + ", rendezvous " + env.master_addr +
            ":" + std::to_string(env.master_port));

  if (backend == "gloo") {
#ifdef ADCORRE_C10D_GLOO
    auto store = rendezvous(env, timeout);
    auto po = c10d::ProcessGroupGloo::Options::create(timeout);
    try {
      if (const char* ifs = std::getenv("GLOO_SOCKET_IFNAME"); ifs && *ifs) {
        std::stringstream ss(ifs);
        for (std::string name; std::getline(ss, name, ',');)
          if (!name.empty()) po->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(name));
      } else if (is_loopback(env.master_addr)) {
        po->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      } else {
        po->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      auto pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, env.rank, env.world_size, po);
      return std::make_shared<C10dCollective<c10d::ProcessGroupGloo>>(env, store, pg, "gloo", opts, true);
    } catch (const std::exception& e) {
      throw Error("rank " + std::to_string(env.rank) + ": cannot build the Gloo process group: " + describe(e) +
                  " (on several machines set GLOO_SOCKET_IFNAME to the interface the ranks share)");
    }
#else
    throw Error("this build has no Gloo (install libgloo-dev and re-run cmake)");
#endif
  }
  if (backend == "nccl") {
#ifdef ADCORRE_C10D_NCCL
    if (!cuda) throw Error("the NCCL backend needs --device cuda");
    // Without async error handling NCCL waits forever for a dead peer.
    setenv("NCCL_ASYNC_ERROR_HANDLING", "1", 0);
    c10::cuda::set_device(static_cast<c10::DeviceIndex>(env.local_rank));
    auto store = rendezvous(env, timeout);
    auto po = c10d::ProcessGroupNCCL::Options::create();
    po->timeout = timeout;
    try {
      auto pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, env.rank, env.world_size, po);
      return std::make_shared<C10dCollective<c10d::ProcessGroupNCCL>>(env, store, pg, "nccl", opts, false);
    } catch (const std::exception& e) {
      throw Error("rank " + std::to_string(env.rank) + ": cannot build the NCCL process group: " + describe(e));
    }
#else
    throw Error("this LibTorch has no NCCL (a CUDA build of LibTorch is needed); use the gloo backend");
#endif
  }
  throw Error("unknown distributed backend '" + backend + "' (expected auto, gloo or nccl)");
}

#else  // no c10d backend in this build

std::shared_ptr<Collective> make_distributed_collective_from_env(const std::string&, const DistributedOptions&) {
  throw Error("--distributed is not available: this build found neither Gloo (libgloo-dev) nor NCCL");
}

#endif

std::shared_ptr<Collective> make_distributed_collective_from_env(const std::string& device) {
  return make_distributed_collective_from_env(device, DistributedOptions{});
}

}  // namespace adcorre::train
