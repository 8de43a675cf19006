// How a model file stores its weights: float32 (exact), or float16 (half the
// file size; loaded back as float32, so only the stored values are rounded).
// Its own header so that code which only passes the choice on (the trainer's
// export) does not need the model-file API.
#pragma once

namespace adcorre::models {

enum class WeightStorage { Float32, Float16 };

}  // namespace adcorre::models
