// Where model files are found: the shipped default and shipped names given to
// --model. Torch-free, so a command that only passes a path on includes it
// cheaply. Implemented in src/models/model_file.cpp.
#pragma once
#include <string>

namespace adcorre::models {

// The model used when --model is omitted: $ADCORRE_MODEL, else
// fer2013-compact.pt in the installed layout next to the executable
// (<exe>/../share/adcorre/models, <exe>/../models) or next to libadcorre
// (<libdir>/../share/adcorre/models), else <source dir>/models in a build tree.
// Throws adcorre::Error when none exists.
std::string default_model_path();

// What a --model argument names: "" is default_model_path(); an existing file,
// or anything with a '/', is itself; a bare name that is no file here
// ("fer2013-fast.pt", or without ".pt") is the shipped model of that name
// in the places default_model_path searches; otherwise the argument unchanged
// (loading it then fails with an error naming it).
std::string resolve_model_path(const std::string& model);

}  // namespace adcorre::models
