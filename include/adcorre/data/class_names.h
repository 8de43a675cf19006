// Canonical expression names and their synonyms. Class names are the lingua
// franca of adcorre: datasets, model files and outputs speak names, indices
// are local to one dataset or model.
#pragma once
#include <optional>
#include <string>
#include <vector>

namespace adcorre::data {

// The canonical names: angry, disgust, fear, happy, sad, surprise, neutral, contempt.
const std::vector<std::string>& canonical_names();

// Maps a folder or label name to its canonical name, case-insensitively, with
// the usual synonyms (anger/angry, disgusted/disgust, fearful/fear,
// happiness/happy, sadness/sad, surprised/surprise, ...). nullopt if unknown.
std::optional<std::string> canonical_name(const std::string& name);

// FER-2013's label order (0..6): angry, disgust, fear, happy, sad, surprise, neutral.
const std::vector<std::string>& fer2013_names();

// For each name of `from`, its index in `to` or -1 (classes matched by name).
std::vector<int> map_classes(const std::vector<std::string>& from, const std::vector<std::string>& to);

}  // namespace adcorre::data
