#include "data/csv.h"

#include <cerrno>
#include <cstdlib>

#include "adcorre/util/error.h"
#include "adcorre/util/fs.h"

namespace adcorre::data::detail {

CsvReader::CsvReader(const std::string& path, char separator) : path_(path), in_(path, std::ios::binary), sep_(separator) {
  if (!in_) throw Error("cannot open " + path);
}

bool CsvReader::next(std::vector<std::string>& fields) {
  while (std::getline(in_, line_)) {
    ++line_no_;
    if (!line_.empty() && line_.back() == '\r') line_.pop_back();
    if (line_no_ == 1 && line_.size() >= 3 && line_.compare(0, 3, "\xEF\xBB\xBF") == 0) line_.erase(0, 3);  // UTF-8 BOM
    if (trim(line_).empty()) continue;
    if (!split_csv_line(line_, sep_, fields)) throw Error(where("unterminated quote"));
    return true;
  }
  if (in_.bad()) throw Error(path_ + ": read error after line " + std::to_string(line_no_));
  return false;
}

std::string CsvReader::where(const std::string& message) const {
  return path_ + ":" + std::to_string(line_no_) + ": " + message;
}

bool split_csv_line(const std::string& line, char sep, std::vector<std::string>& fields) {
  fields.clear();
  std::string field;
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < line.size() && line[i + 1] == '"') field += '"', ++i;
        else quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == sep) {
      fields.push_back(std::move(field));
      field.clear();
    } else {
      field += c;
    }
  }
  fields.push_back(std::move(field));
  return !quoted;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

bool parse_int(const std::string& s_in, long long& out) {
  std::string s = trim(s_in);
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtoll(s.c_str(), &end, 10);
  return errno == 0 && end == s.c_str() + s.size();
}

bool parse_double(const std::string& s_in, double& out) {
  std::string s = trim(s_in);
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtod(s.c_str(), &end);
  return errno == 0 && end == s.c_str() + s.size();
}

int column_index(const std::vector<std::string>& header, const std::string& name) {
  for (size_t i = 0; i < header.size(); ++i)
    if (fs::lower(trim(header[i])) == fs::lower(name)) return static_cast<int>(i);
  return -1;
}

std::map<std::string, std::string> parse_options(const std::string& options, const std::vector<std::string>& known,
                                                 const std::vector<std::string>& other, const std::string& kind) {
  std::map<std::string, std::string> out;
  std::string item;
  auto flush = [&] {
    item = trim(item);
    if (item.empty()) return;
    auto eq = item.find('=');
    std::string key = trim(item.substr(0, eq)), value = eq == std::string::npos ? "" : trim(item.substr(eq + 1));
    bool ok = false, elsewhere = false;
    for (auto& k : known) ok |= k == key;
    for (auto& k : other) elsewhere |= k == key;
    if (!ok && elsewhere) {  // another kind's option: not for this reader
      item.clear();
      return;
    }
    if (!ok) {
      std::string list;
      for (auto& k : known) list += (list.empty() ? "" : ", ") + k;
      throw Error("unknown option '" + key + "' for dataset kind " + kind + " (known: " + (list.empty() ? "none" : list) +
                  ")");
    }
    if (eq == std::string::npos || value.empty()) throw Error("option '" + key + "' needs a value (" + key + "=...)");
    out[key] = value;
    item.clear();
  };
  for (char c : options) {
    if (c == ',' || c == ';') flush();
    else item += c;
  }
  flush();
  return out;
}

std::string canonical_split(const std::string& split) {
  auto s = fs::lower(trim(split));
  if (s.empty() || s == "all") return "";
  if (s == "train" || s == "training") return "train";
  if (s == "val" || s == "valid" || s == "validation" || s == "publictest") return "val";
  if (s == "test" || s == "privatetest") return "test";
  throw Error("unknown split '" + split + "' (known: train, val, test)");
}

}  // namespace adcorre::data::detail
