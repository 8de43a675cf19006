// The measurements behind `adcorre bench` (bench/suite.h), one function per
// kind of work; suite.cpp plans them and pairs them with the Python side.
// Each returns bench::summarize()'s JSON (items = images, or 1 for the loss)
// or, for loader/predict, a section object.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "adcorre/bench/suite.h"
#include "adcorre/bench/timing.h"
#include "adcorre/models/model_config.h"

namespace adcorre::bench::detail {

// Eval mode, InferenceMode, channels_last, a fixed random batch.
nlohmann::json cpp_inference(const models::ModelConfig& cfg, int batch, const Timing& t, uint64_t seed);
// Train mode: forward, AdCorreLoss, zero_grad, backward, Adam step.
nlohmann::json cpp_training(const models::ModelConfig& cfg, int batch, const Timing& t, uint64_t seed);
// AdCorreLoss::forward (+ backward when `backward`) on leaf tensors.
nlohmann::json cpp_loss(int B, int k, int d, int C, const Timing& t, bool backward, uint64_t seed);

nlohmann::json loader_section(const BenchOptions& o, const models::ModelConfig& cfg, const Timing& batch_timing);
nlohmann::json predict_section(const BenchOptions& o, const models::ModelConfig& cfg, const Timing& t);
// The "model" section (bench/suite.h): o.model as predict runs it.
nlohmann::json model_section(const BenchOptions& o, const Timing& latency, const Timing& throughput);

}  // namespace adcorre::bench::detail
