// Ensemble: several trained adcorre models answering as one model.
//
// What it represents: a FerModel (arch "ensemble") whose class probabilities
// are the mean of its members' softmax probabilities, equal weights. It is
// saved and loaded like any model file (one file, members' weights under
// "members.<i>."), so eval, predict, serve and embed --features take it as
// they are.
//
// Requires: at least 2 members, none itself an ensemble, all with the same
// input size, channels, normalisation and class names (preprocessing runs
// once, by the ensemble's config).
// Ensures: forward(x).logits = log(mean_i softmax(member_i(x).logits)), so
// softmax(logits) is exactly the averaged probability and argmax the
// ensemble's answer; forward(x).embeddings is undefined (members' Ad-Corre
// embeddings live in different spaces); features(x) concatenates the members'
// pooled features. Training an ensemble is not supported: train the members.
#pragma once
#include <vector>

#include "adcorre/models/fer_model.h"

namespace adcorre::models {

// The config of an ensemble of models with these configs; input fields and
// class names are taken from member 0. Throws adcorre::Error naming the first
// member (members[i]) and field that disagree.
ModelConfig ensemble_config(const std::vector<ModelConfig>& members);

// Wraps already built (e.g. loaded) member networks; members[i] must be the
// network of config.members[i].
FerModel make_ensemble(const ModelConfig& config, const std::vector<FerModel>& members);

// Member `index` of an ensemble as a network of its own (a copy: its weights
// are the ensemble's "members.<index>." tensors), e.g. to fine-tune one member
// (`adcorre export ENSEMBLE.pt --member I`, then `train --init`).
// Requires: config.arch == "ensemble" and net is its network.
// Throws adcorre::Error if index is out of range or a tensor is missing.
FerModel ensemble_member(const ModelConfig& config, FerModelImpl& net, size_t index);

}  // namespace adcorre::models
