// File integrity: the zip container of model files and checkpoints is checked
// (CRC-32 of every entry) before LibTorch parses it, so damaged bytes anywhere
// give an error and never a crash; writes that fail (full disk, file-size
// limit) leave the previous file and no temporary; stale temporaries of dead
// writers are cleaned; NaN/Inf weights are never written.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <random>

#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "adcorre/models/model_file.h"
#include "adcorre/util/checking_child.h"
#include "adcorre/util/error.h"
#include "adcorre/util/fs.h"
#include "adcorre/util/pickle_scan.h"
#include "adcorre/util/torch_archive.h"
#include "adcorre/util/zip_integrity.h"
#include "test_util.h"

using namespace adcorre;
namespace sfs = std::filesystem;

namespace {

std::string read_bytes(const std::string& path) { return fs::read_file(path); }

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// A small real model file (fer-tiny), its bytes and its logits on a fixed batch.
struct TinyModel {
  test::TempDir tmp;
  std::string path = tmp / "m.pt";
  models::ModelConfig cfg = models::preset("fer-tiny");
  torch::Tensor x, logits;
  TinyModel() {
    torch::manual_seed(3);
    auto net = models::create_model(cfg);
    net->eval();
    models::save_model(path, cfg, *net);
    x = torch::randn({2, 1, 48, 48});
    logits = forward(path);
  }
  torch::Tensor forward(const std::string& p) const {
    auto m = models::load_model(p);
    torch::NoGradGuard ng;
    return m.net->forward(x.contiguous(torch::MemoryFormat::ChannelsLast)).logits;
  }
};

// The bytes of the archive at `path` with its data.pkl replaced by
// edit(data.pkl) and every CRC-32 valid (LibTorch's own writer).
std::string archive_with_pickle(const std::string& path, const std::function<std::string(const std::string&)>& edit) {
  std::vector<std::pair<std::string, std::string>> records;
  {
    caffe2::serialize::PyTorchStreamReader reader(path);
    for (const auto& name : reader.getAllRecords()) {
      if (name == "version" || name == ".data/version") continue;  // the writer adds its own
      auto [ptr, n] = reader.getRecord(name);
      records.emplace_back(name, std::string(static_cast<const char*>(ptr.get()), n));
    }
  }
  std::string file;
  caffe2::serialize::PyTorchStreamWriter writer([&file](const void* p, size_t n) {
    file.append(static_cast<const char*>(p), n);
    return n;
  });
  bool replaced = false;
  for (const auto& [name, bytes] : records) {
    const bool is_pickle = name.size() >= 8 && name.compare(name.size() - 8, 8, "data.pkl") == 0;
    replaced = replaced || is_pickle;
    const std::string b = is_pickle ? edit(bytes) : bytes;
    writer.writeRecord(name, b.data(), b.size());
  }
  writer.writeEndOfFile();
  EXPECT_TRUE(replaced) << "no data.pkl entry in the archive";
  return file;
}

}  // namespace

TEST(ZipIntegrity, AnIntactArchivePassesAndItsStructureIsChecked) {
  TinyModel t;
  const std::string bytes = read_bytes(t.path);
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  EXPECT_EQ(fs::zip_integrity_error(p, bytes.size()), "");
  EXPECT_NO_THROW(fs::verify_zip_integrity(t.path, "model file"));
  // Truncations at any length are refused (the end record is gone).
  for (size_t n : {size_t(0), size_t(10), bytes.size() / 2, bytes.size() - 1})
    EXPECT_NE(fs::zip_integrity_error(p, n), "") << n;
  EXPECT_NE(fs::zip_integrity_error(reinterpret_cast<const uint8_t*>("hello"), 5), "");
}

// Every flipped byte either is refused with an error or (a field nothing
// reads, such as a timestamp) loads to the very same network. Before the
// check, flips in data.pkl crashed every loader with SIGSEGV.
TEST(ZipIntegrity, FlippedBytesAnywhereAreRefusedOrHarmless) {
  TinyModel t;
  const std::string bytes = read_bytes(t.path);
  std::mt19937 rng(11);
  std::vector<size_t> positions;
  // The structure at the end (central directory, end records: the last 4 KB)
  // and 1,500 positions over the whole file (data.pkl, names, tensors).
  for (size_t i = bytes.size() > 4096 ? bytes.size() - 4096 : 0; i < bytes.size(); i += 3) positions.push_back(i);
  for (int i = 0; i < 1500; ++i) positions.push_back(rng() % bytes.size());
  int refused = 0, harmless = 0;
  const std::string flipped_path = t.tmp / "flipped.pt";
  for (size_t pos : positions) {
    std::string bad = bytes;
    bad[pos] = static_cast<char>(bad[pos] ^ (1 << (rng() % 8)));
    const std::string problem = fs::zip_integrity_error(reinterpret_cast<const uint8_t*>(bad.data()), bad.size());
    if (!problem.empty()) {
      ++refused;
      continue;
    }
    // Passed the container check: LibTorch and adcorre's own checks must
    // still either refuse it cleanly or give the same outputs.
    write_bytes(flipped_path, bad);
    try {
      auto got = t.forward(flipped_path);
      EXPECT_TRUE(torch::equal(got, t.logits)) << "byte " << pos << " changed the outputs silently";
      ++harmless;
    } catch (const Error&) {
      ++refused;
    }
  }
  // Unused fields (timestamps, attributes, padding) make up part of the
  // directory; everything else must be refused.
  EXPECT_GT(refused, static_cast<int>(positions.size()) / 2) << "harmless: " << harmless;
  // Every flip inside data.pkl (what crashed the unpickler) is refused by the
  // container check alone.
  const size_t name_at = bytes.find("/data.pkl");
  ASSERT_NE(name_at, std::string::npos);
  const size_t local = bytes.rfind(std::string("PK\x03\x04", 4), name_at);
  ASSERT_NE(local, std::string::npos);
  auto u16 = [&](size_t at) { return static_cast<size_t>(static_cast<uint8_t>(bytes[at]) | static_cast<uint8_t>(bytes[at + 1]) << 8); };
  // The size from the central directory entry (local headers may hold 0).
  const size_t central = bytes.rfind(std::string("PK\x01\x02", 4), bytes.rfind("/data.pkl"));
  ASSERT_NE(central, std::string::npos);
  const size_t pkl_size = u16(central + 20) | u16(central + 22) << 16;
  const size_t pkl = local + 30 + u16(local + 26) + u16(local + 28);
  ASSERT_GT(pkl_size, 0u);
  for (size_t i = pkl; i < pkl + pkl_size; i += std::max<size_t>(1, pkl_size / 400)) {
    std::string bad = bytes;
    bad[i] ^= 0x20;
    EXPECT_NE(fs::zip_integrity_error(reinterpret_cast<const uint8_t*>(bad.data()), bad.size()), "") << "data.pkl byte " << i - pkl;
  }
  // The loader's own message names the file and the damaged entry.
  std::string bad = bytes;
  bad[bytes.size() / 2] ^= 0x10;
  write_bytes(flipped_path, bad);
  const std::string msg = error_of([&] { models::load_model(flipped_path); });
  EXPECT_NE(msg.find(flipped_path), std::string::npos) << msg;
  EXPECT_NE(msg.find("is corrupt"), std::string::npos) << msg;
}

TEST(ZipIntegrity, FoldersKerasFilesAndDevicesGetMessagesThatSaySo) {
  test::TempDir tmp;
  sfs::create_directories(tmp.path / "run");
  std::string msg = error_of([&] { models::load_model(tmp / "run"); });
  EXPECT_NE(msg.find("is a folder"), std::string::npos) << msg;
  write_bytes(tmp / "k.h5", std::string("\x89HDF\r\n\x1a\n", 8) + std::string(100, '\0'));
  msg = error_of([&] { models::load_model(tmp / "k.h5"); });
  EXPECT_NE(msg.find("import-keras"), std::string::npos) << msg;
  msg = error_of([&] { models::load_model("/dev/zero"); });
  EXPECT_NE(msg.find("not a regular file"), std::string::npos) << msg;
}

// RLIMIT_FSIZE makes writes fail with EFBIG as a full disk does with ENOSPC.
TEST(SafeWrites, AFailedWriteKeepsThePreviousFileAndLeavesNoTemporary) {
  TinyModel t;
  const std::string before = read_bytes(t.path);
  auto net = models::create_model(t.cfg);  // other weights
  struct rlimit old {};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  auto previous_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old;
  small.rlim_cur = 4096;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  const std::string msg = error_of([&] { models::save_model(t.path, t.cfg, *net); });
  setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, previous_handler);
  EXPECT_NE(msg.find("cannot write model file " + t.path), std::string::npos) << msg;
  EXPECT_NE(msg.find("previous file is unchanged"), std::string::npos) << msg;
  EXPECT_EQ(read_bytes(t.path), before);
  for (auto& e : sfs::directory_iterator(t.tmp.path))
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
  // The same write with room succeeds.
  EXPECT_NO_THROW(models::save_model(t.path, t.cfg, *net));
  EXPECT_NE(read_bytes(t.path), before);
}

TEST(SafeWrites, StaleTemporariesOfDeadWritersAreRemoved) {
  TinyModel t;
  // A pid that certainly exited: a child we waited for.
  pid_t dead = fork();
  if (dead == 0) _exit(0);
  ASSERT_GT(dead, 0);
  waitpid(dead, nullptr, 0);
  const std::string stale = t.path + ".tmp." + std::to_string(dead);
  const std::string live = t.path + ".tmp." + std::to_string(getppid());  // a running process's
  const std::string other = t.tmp / "other.pt.tmp.1";                     // another file's
  for (auto& p : {stale, live, other}) write_bytes(p, "partial");
  auto net = models::create_model(t.cfg);
  models::save_model(t.path, t.cfg, *net);
  EXPECT_FALSE(sfs::exists(stale));
  EXPECT_TRUE(sfs::exists(live));
  EXPECT_TRUE(sfs::exists(other));
}

TEST(SafeWrites, NonFiniteWeightsAreNeverWritten) {
  TinyModel t;
  const std::string before = read_bytes(t.path);
  auto net = models::create_model(t.cfg);
  {
    torch::NoGradGuard ng;
    net->parameters()[3].view(-1)[0] = std::numeric_limits<float>::quiet_NaN();
  }
  EXPECT_NE(models::first_non_finite_tensor(*net), "");
  std::string msg = error_of([&] { models::save_model(t.path, t.cfg, *net); });
  EXPECT_NE(msg.find("NaN or infinite"), std::string::npos) << msg;
  EXPECT_NE(msg.find(models::first_non_finite_tensor(*net)), std::string::npos) << msg;
  EXPECT_EQ(read_bytes(t.path), before);
  {
    torch::NoGradGuard ng;
    net->parameters()[3].view(-1)[0] = std::numeric_limits<float>::infinity();
  }
  EXPECT_THROW(models::save_model(t.tmp / "inf.pt", t.cfg, *net), Error);
  EXPECT_FALSE(sfs::exists(t.tmp / "inf.pt"));
}

// Crafted pickles inside an archive whose CRC-32s are all valid: they pass the
// container check and reach LibTorch's unpickler. Each must give adcorre's
// error naming the file. The first is what fuzz_model_file found: LibTorch
// 1.13 answers a memo lookup of a missing index with std::out_of_range, not
// c10::Error, which the loader once let out without the file's name.
TEST(ModelFileBehindTheCrc, CraftedPicklesWithValidCrcsGiveErrorsNamingTheFile) {
  TinyModel t;
  auto with_pickle = [&](const std::string& pickle) {
    return archive_with_pickle(t.path, [&](const std::string&) { return pickle; });
  };
  // The archive rewritten with its own pickle still loads: the rewrite is sound.
  const std::string same = t.tmp / "same.pt";
  write_bytes(same, archive_with_pickle(t.path, [](const std::string& own) { return own; }));
  EXPECT_TRUE(torch::allclose(t.forward(same), t.logits));

  const std::vector<std::pair<std::string, std::string>> crafted = {
      {"memo lookup of a missing index (BINGET 5)", std::string("\x80\x02h\x05.", 5)},
      {"LONG_BINGET of a missing index", std::string("\x80\x02j\x03\x00\x00\x00.", 8)},
      {"empty pickle", ""},
      {"truncated inside a dict", std::string("\x80\x02}q\x00(", 6)},
      {"a lone STOP", "."},
      {"an integer instead of the module", std::string("\x80\x02K\x07.", 5)},
      {"an unknown opcode", std::string("\x80\x02\xfe.", 4)},
      {"a global that does not exist", std::string("\x80\x02" "cno_such\nthing\n.", 18)},
  };
  // A memo index LibTorch would size a table from (the 31 GB LONG_BINPUT
  // fuzz_model_file found): refused by the container check, before LibTorch.
  {
    const std::string path = t.tmp / "memo.pt";
    write_bytes(path, with_pickle(std::string("\x80\x02}r\x01\x10\x00\x74.", 9)));
    const std::string msg = error_of([&] { (void)models::load_model(path); });
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("LONG_BINPUT at byte 3 names memo entry 1946161153"), std::string::npos) << msg;
  }
  for (const auto& [what, pickle] : crafted) {
    const std::string path = t.tmp / "crafted.pt";
    write_bytes(path, with_pickle(pickle));
    ASSERT_NO_THROW(fs::verify_zip_integrity(path, "model file")) << what << ": the rewritten archive must pass the CRC check";
    std::string msg;
    try {
      (void)models::load_model(path);
      ADD_FAILURE() << what << ": loaded";
    } catch (const Error& e) {
      msg = e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << what << ": an exception that is not adcorre's: " << e.what();
    }
    EXPECT_NE(msg.find(path), std::string::npos) << what << ": " << msg;
  }
}

// The memo scan itself: real pickles pass, out-of-range indices are named,
// and no prefix of a real pickle makes it read past the end (ASan in
// scripts/sanitize.sh; fuzz_zip_integrity runs it on any bytes).
TEST(PickleScan, RealPicklesPassAndHugeMemoIndicesAreNamed) {
  TinyModel t;
  std::string pickle;
  {
    caffe2::serialize::PyTorchStreamReader reader(t.path);
    for (const auto& name : reader.getAllRecords())
      if (name.size() >= 8 && name.compare(name.size() - 8, 8, "data.pkl") == 0) {
        auto [ptr, n] = reader.getRecord(name);
        pickle.assign(static_cast<const char*>(ptr.get()), n);
      }
  }
  ASSERT_GT(pickle.size(), 100u);
  auto scan = [](const std::string& b) { return fs::pickle_scan_error(reinterpret_cast<const uint8_t*>(b.data()), b.size()); };
  EXPECT_EQ(scan(pickle), "");
  // Every prefix either passes or is refused for an argument cut short; none is misread.
  for (size_t n = 0; n <= pickle.size(); ++n) {
    const std::string e = scan(pickle.substr(0, n));
    EXPECT_TRUE(e.empty() || e.find("bytes of data, more than the") != std::string::npos) << n << ": " << e;
  }
  // A string that announces more bytes than the pickle has (1.6 GB allocated for a 9 KB file).
  EXPECT_NE(scan(std::string("\x80\x02X\x22\x6a\x5e\x62" "abc.", 11)).find("at byte 2 announces 1650354722 bytes of data"), std::string::npos)
      << scan(std::string("\x80\x02X\x22\x6a\x5e\x62" "abc.", 11));
  EXPECT_NE(scan(std::string("\x80\x02}r\xff\xff\xff\x7f.", 9)).find("LONG_BINPUT at byte 3 names memo entry 2147483647"), std::string::npos);
  EXPECT_NE(scan(std::string("\x80\x02j\x00\x00\x01\x00.", 8)).find("LONG_BINGET at byte 2"), std::string::npos);
  EXPECT_NE(scan("(p99999\n."), "");  // protocol 0 PUT
  EXPECT_EQ(scan("(p1\n."), "");
  // Tensor storages: ('storage', torch.FloatStorage, key, location, numel) must fit their record.
  const std::string persid = std::string("\x80\x02(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00" "0"
                                         "X\x03\x00\x00\x00" "cpuM\x00\x01tQ.", 55);
  auto scan_with = [&](const std::map<std::string, uint64_t>& records) {
    return fs::pickle_scan_error(reinterpret_cast<const uint8_t*>(persid.data()), persid.size(), &records);
  };
  EXPECT_EQ(scan_with({{"0", 1024}}), "");  // 256 floats
  EXPECT_NE(scan_with({{"0", 64}}).find("declares 256 elements for tensor data '0', more than its 64 bytes hold"), std::string::npos)
      << scan_with({{"0", 64}});
  EXPECT_NE(scan_with({{"1", 1024}}).find("names tensor data '0', which the archive does not hold"), std::string::npos);
  // The real pickle against its own records passes (every storage of the file checked).
  {
    std::map<std::string, uint64_t> records;
    caffe2::serialize::PyTorchStreamReader reader(t.path);
    for (const auto& name : reader.getAllRecords())
      if (name.rfind("data/", 0) == 0) records[name.substr(5)] = std::get<1>(reader.getRecord(name));  // names without the archive's folder
    ASSERT_FALSE(records.empty());
    EXPECT_EQ(fs::pickle_scan_error(reinterpret_cast<const uint8_t*>(pickle.data()), pickle.size(), &records), "");
    auto fewer = records;
    fewer.begin()->second -= 1;  // one byte short of what its storage declares
    EXPECT_NE(fs::pickle_scan_error(reinterpret_cast<const uint8_t*>(pickle.data()), pickle.size(), &fewer).find("more than its"),
              std::string::npos);
  }
  // Unicode strings must be UTF-8 (a crafted invalid one preceded heap corruption in LibTorch 1.13).
  EXPECT_EQ(scan(std::string("\x80\x02X\x05\x00\x00\x00" "caf\xc3\xa9" ".", 13)), "");
  EXPECT_NE(scan(std::string("\x80\x02X\x02\x00\x00\x00\x81\x41.", 10)).find("at byte 2 holds a unicode string that is not valid UTF-8"),
            std::string::npos);
  EXPECT_NE(scan(std::string("\x80\x02\x8c\x03\xed\xa0\x80.", 8)).find("not valid UTF-8"), std::string::npos);  // a surrogate
  // An index hidden inside a string argument is data, not an opcode.
  EXPECT_EQ(scan(std::string("\x80\x02X\x05\x00\x00\x00r\x7f\x7f\x7f\x7f.", 13)), "");
}

// The checking child (util/checking_child.h): whatever the parse does to the
// child, this process gets an outcome, and nothing the child did reaches it.
TEST(CheckingChild, EveryOutcomeOfTheChildIsAnAnswerHere) {
  util::ChildCheckOptions o;
  o.parser = "the test parser";
  o.deadline_s = 30;
  int touched = 0;
  EXPECT_TRUE(util::run_checked_in_child([&] { touched = 1; }, "thing.bin", o));
  EXPECT_EQ(touched, 0) << "the check ran in this process";
  EXPECT_EQ(error_of([&] { util::run_checked_in_child([] { throw Error("thing.bin:3: bad field 'x'"); }, "thing.bin", o); }),
            "thing.bin:3: bad field 'x'");
  EXPECT_EQ(error_of([&] { util::run_checked_in_child([] { throw std::out_of_range("at()"); }, "thing.bin", o); }), "at()");
  std::string msg = error_of([&] { util::run_checked_in_child([] { std::raise(SIGSEGV); }, "thing.bin", o); });
  EXPECT_NE(msg.find("thing.bin: the test parser crashed reading it (signal 11"), std::string::npos) << msg;
  msg = error_of([&] { util::run_checked_in_child([] { _exit(3); }, "thing.bin", o); });
  EXPECT_NE(msg.find("thing.bin: the test parser died reading it (exit status 3 with no result"), std::string::npos) << msg;
  // A loop: killed at the deadline.
  util::ChildCheckOptions quick = o;
  quick.deadline_s = 0.3;
  const auto t0 = std::chrono::steady_clock::now();
  msg = error_of([&] {
    util::run_checked_in_child([] { for (volatile int i = 0;; i = i + 1) {} }, "thing.bin", quick);
  });
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 10.0);
  EXPECT_NE(msg.find("thing.bin: the test parser did not finish reading it within 0.3 s"), std::string::npos) << msg;
  // Disabled: nothing runs (the check would crash the child).
  util::ChildCheckOptions off = o;
  off.enabled = false;
  EXPECT_FALSE(util::run_checked_in_child([] { std::raise(SIGSEGV); }, "thing.bin", off));
#if !defined(__SANITIZE_ADDRESS__)
  // An allocation past the cap fails in the child, as the 31 GB memo table would.
  util::ChildCheckOptions capped = o;
  capped.extra_address_space = size_t(256) << 20;
  msg = error_of([&] {
    util::run_checked_in_child([] {
      std::vector<char> big(size_t(8) << 30);
      big[12345] = 1;
    }, "thing.bin", capped);
  });
  EXPECT_NE(msg.find("needs more memory than the check allows (256 MiB"), std::string::npos) << msg;
#endif
}

// A tensor whose view reaches past its storage (a crafted storage offset,
// every CRC-32 valid and the pickle scan satisfied) would be read out of
// bounds when the weights are copied: the checking child refuses it.
TEST(ModelFileBehindTheCrc, ATensorPastItsStorageIsRefused) {
  TinyModel t;
  const std::string path = t.tmp / "offset.pt";
  write_bytes(path, archive_with_pickle(t.path, [](std::string pkl) {
    const auto at = pkl.find("_rebuild_tensor_v2");
    EXPECT_NE(at, std::string::npos);
    const auto offset = pkl.find(std::string("K\x00(", 3), at);  // storage offset 0, then the sizes' MARK
    EXPECT_NE(offset, std::string::npos);
    if (offset != std::string::npos) pkl.replace(offset, 3, std::string("M\x00\x10(", 4));  // offset 4096
    return pkl;
  }));
  ASSERT_NO_THROW(fs::verify_zip_integrity(path, "model file"));
  const std::string msg = error_of([&] { (void)models::load_model(path); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("is corrupt: tensor '"), std::string::npos) << msg;
  EXPECT_NE(msg.find("bytes of a storage of"), std::string::npos) << msg;
}

// Model files are unpickled in the checking child with a deadline: the real
// loader path runs it (a deadline nothing can meet refuses a sound file).
TEST(ModelFileBehindTheCrc, LoadingGoesThroughTheCheckingChild) {
  TinyModel t;
  setenv("ADCORRE_ARCHIVE_CHECK_SECONDS", "0.000001", 1);
  const std::string msg = error_of([&] { (void)models::load_model(t.path); });
  unsetenv("ADCORRE_ARCHIVE_CHECK_SECONDS");
  EXPECT_NE(msg.find("model file " + t.path + ": LibTorch's loader did not finish reading it within 1e-06 s"), std::string::npos) << msg;
  setenv("ADCORRE_ARCHIVE_IN_PROCESS", "1", 1);
  setenv("ADCORRE_ARCHIVE_CHECK_SECONDS", "0.000001", 1);
  EXPECT_TRUE(torch::allclose(t.forward(t.path), t.logits)) << "ADCORRE_ARCHIVE_IN_PROCESS skips the child";
  unsetenv("ADCORRE_ARCHIVE_IN_PROCESS");
  unsetenv("ADCORRE_ARCHIVE_CHECK_SECONDS");
  EXPECT_TRUE(torch::allclose(t.forward(t.path), t.logits));
}
