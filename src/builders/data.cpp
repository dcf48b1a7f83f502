#include "syncbn/builders/data.hpp"

#include "syncbn/error.hpp"

namespace syncbn::builders {
namespace {

// The test split of the synthetic data: the samples after the training ones, drawn from the same
// class patterns (a different seed would draw different patterns and make the test meaningless).
class SyntheticTestSplit : public data::Dataset {
 public:
  SyntheticTestSplit(data::SyntheticDatasetOptions all, std::int64_t offset, std::int64_t size)
      : all_(all), offset_(offset), size_(size) {}
  std::int64_t size() const override { return size_; }
  std::int64_t num_classes() const override { return all_.num_classes(); }
  Shape sample_shape() const override { return all_.sample_shape(); }
  data::Batch get_batch(const std::vector<std::int64_t>& indices) const override {
    check_indices(indices);
    std::vector<std::int64_t> shifted(indices);
    for (auto& i : shifted) i += offset_;
    return all_.get_batch(shifted);
  }

 private:
  data::SyntheticDataset all_;
  std::int64_t offset_, size_;
};

std::unique_ptr<data::Dataset> make_synthetic(const config::Config& c, data::Split split) {
  const auto& in = c.model.input;
  auto options = data::SyntheticDatasetOptions()
                     .size(c.data.synthetic_train_size + c.data.synthetic_test_size)
                     .num_classes(c.model.num_classes)
                     .sample_shape({in[0], in[1], in[2]})
                     .seed(c.train.seed);
  if (split == data::Split::Train)
    return std::make_unique<data::SyntheticDataset>(options.size(c.data.synthetic_train_size));
  return std::make_unique<SyntheticTestSplit>(options, c.data.synthetic_train_size,
                                              c.data.synthetic_test_size);
}

}  // namespace

std::unique_ptr<data::Dataset> make_dataset(const config::Config& c, data::Split split) {
  switch (c.data.dataset) {
    case config::DatasetKind::Synthetic:
      return make_synthetic(c, split);
    case config::DatasetKind::FashionMnist:
      break;
  }
  return std::make_unique<data::FashionMnist>(
      data::FashionMnistOptions()
          .root(c.data.dir)
          .split(split)
          .augment(split == data::Split::Train && c.data.augment)
          .seed(c.train.seed));
}

void check_fits(const config::Config& c, const data::Dataset& d) {
  const Shape want{c.model.input[0], c.model.input[1], c.model.input[2]};
  const char* name = config::to_string(c.data.dataset);
  SYNCBN_CHECK_AS(ConfigError, d.sample_shape() == want, c.source, ": model.input is ",
                  shape_str(want), " but data set '", name, "' has samples of shape ",
                  shape_str(d.sample_shape()));
  SYNCBN_CHECK_AS(ConfigError, d.num_classes() == c.model.num_classes, c.source,
                  ": model.num_classes is ", c.model.num_classes, " but data set '", name, "' has ",
                  d.num_classes(), " classes");
}

}  // namespace syncbn::builders
