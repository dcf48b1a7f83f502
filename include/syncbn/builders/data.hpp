#pragma once
// The data sets a config names (data.dataset): Fashion-MNIST read from data.dir, or the
// synthetic set, whose test split holds the samples after the training ones (same class
// patterns, so the test measures something). Used by the trainer and by syncbn-quantize.
#include <memory>

#include "syncbn/config/config.hpp"
#include "syncbn/data/dataset.hpp"
#include "syncbn/data/transforms.hpp"

namespace syncbn::builders {

// The train or test split of the configured data set. Throws what the data set's constructor
// throws (e.g. IoError for a missing Fashion-MNIST file, ConfigError for bad sizes).
std::unique_ptr<data::Dataset> make_dataset(const config::Config& config, data::Split split);

// The transforms the config asks for on `split`: data.mean / data.std (the defaults given when
// the config names none; empty = no normalisation), and on the training split data.augment's
// random crop (data.crop_padding) + flip. Wrap a data set with data::with_transforms(d, this).
data::TransformOptions transforms_for(const config::Config& config, data::Split split,
                                      std::vector<double> default_mean,
                                      std::vector<double> default_std);

// Throws ConfigError, naming config.source, when `dataset`'s sample shape is not model.input or
// its class count is not model.num_classes: the model could not train on it.
void check_fits(const config::Config& config, const data::Dataset& dataset);

}  // namespace syncbn::builders
