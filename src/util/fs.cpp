#include "adcorre/util/fs.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "adcorre/util/error.h"

namespace adcorre::fs {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error("cannot read " + path);
  return ss.str();
}

// Removes "<path>.tmp.<pid>" files whose process no longer exists: what a
// killed writer left behind. A live process's temp file is never touched.
static void remove_stale_temps(const std::string& path) {
  namespace sfs = std::filesystem;
  const sfs::path target(path);
  const sfs::path dir = target.parent_path().empty() ? sfs::path(".") : target.parent_path();
  const std::string prefix = target.filename().string() + ".tmp.";
  std::error_code ec;
  for (sfs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string pid_text = name.substr(prefix.size());
    if (pid_text.find_first_not_of("0123456789") != std::string::npos || pid_text.size() > 9) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(pid_text));
    if (pid == getpid() || (::kill(pid, 0) == 0 || errno != ESRCH)) continue;
    std::error_code rm;
    sfs::remove(it->path(), rm);
  }
}

std::string temp_path_for(const std::string& path) {
  remove_stale_temps(path);
  return path + ".tmp." + std::to_string(getpid());
}

static void fsync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

void commit_temp(const std::string& tmp, const std::string& path) {
  fsync_path(tmp);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error("cannot rename " + tmp + " to " + path);
  }
  auto dir = std::filesystem::path(path).parent_path();
  fsync_path(dir.empty() ? "." : dir.string());
}

void write_file_atomic(const std::string& path, const std::string& data) {
  const std::string tmp = temp_path_for(path);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error("cannot write " + path + ": " + std::strerror(errno));
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    out.flush();
    if (!out) {
      out.close();
      std::remove(tmp.c_str());
      throw Error("cannot write " + path + " (disk full?); the previous file is unchanged");
    }
  }
  commit_temp(tmp, path);
}

std::string shared_dir() {
  if (const char* env = std::getenv("ADCORRE_SHARED"); env && *env) return env;
#ifdef ADCORRE_SOURCE_DIR
  std::filesystem::path p = std::filesystem::path(ADCORRE_SOURCE_DIR).parent_path() / "shared";
  if (std::filesystem::exists(p)) return p.string();
#endif
  if (std::filesystem::exists("../shared")) return std::filesystem::absolute("../shared").lexically_normal().string();
  return "";
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

}  // namespace adcorre::fs
