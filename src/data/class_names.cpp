#include "adcorre/data/class_names.h"

#include <map>

#include "adcorre/util/fs.h"

namespace adcorre::data {

const std::vector<std::string>& canonical_names() {
  static const std::vector<std::string> n{"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "contempt"};
  return n;
}

const std::vector<std::string>& fer2013_names() {
  static const std::vector<std::string> n{"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"};
  return n;
}

std::optional<std::string> canonical_name(const std::string& name) {
  static const std::map<std::string, std::string> synonyms{
      {"angry", "angry"},       {"anger", "angry"},         {"disgust", "disgust"},   {"disgusted", "disgust"},
      {"fear", "fear"},         {"fearful", "fear"},        {"afraid", "fear"},       {"scared", "fear"},
      {"happy", "happy"},       {"happiness", "happy"},     {"joy", "happy"},         {"sad", "sad"},
      {"sadness", "sad"},       {"surprise", "surprise"},   {"surprised", "surprise"}, {"neutral", "neutral"},
      {"contempt", "contempt"}, {"contemptuous", "contempt"}};
  auto it = synonyms.find(fs::lower(name));
  if (it == synonyms.end()) return std::nullopt;
  return it->second;
}

std::vector<int> map_classes(const std::vector<std::string>& from, const std::vector<std::string>& to) {
  std::vector<int> m;
  for (auto& f : from) {
    int idx = -1;
    auto cf = canonical_name(f).value_or(fs::lower(f));
    for (size_t j = 0; j < to.size(); ++j)
      if (canonical_name(to[j]).value_or(fs::lower(to[j])) == cf) idx = static_cast<int>(j);
    m.push_back(idx);
  }
  return m;
}

}  // namespace adcorre::data
