#include "syncbn/builders/data.hpp"

#include "syncbn/data/file_datasets.hpp"
#include "syncbn/data/transforms.hpp"
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

// A data set's samples flattened to [numel] (PyTorch's x.view(B, -1)): what an MLP whose
// model.input is [784] reads from Fashion-MNIST's [1, 28, 28] images.
class FlattenedSamples : public data::Dataset {
 public:
  explicit FlattenedSamples(std::unique_ptr<data::Dataset> inner) : inner_(std::move(inner)) {}
  std::int64_t size() const override { return inner_->size(); }
  std::int64_t num_classes() const override { return inner_->num_classes(); }
  Shape sample_shape() const override { return {shape_numel(inner_->sample_shape())}; }
  data::Batch get_batch(const std::vector<std::int64_t>& indices) const override {
    data::Batch batch = inner_->get_batch(indices);
    batch.images = batch.images.reshape(
        {static_cast<std::int64_t>(indices.size()), shape_numel(inner_->sample_shape())});
    return batch;
  }
  void set_epoch(std::int64_t epoch) override { inner_->set_epoch(epoch); }

 private:
  std::unique_ptr<data::Dataset> inner_;
};

// Flattens when model.input is one number that is exactly the data set's sample size.
std::unique_ptr<data::Dataset> flatten_if_asked(const config::Config& c,
                                                std::unique_ptr<data::Dataset> d) {
  const auto& in = c.model.input;
  const Shape sample = d->sample_shape();
  if (in.size() != 1 || sample.size() == 1 || in[0] != shape_numel(sample)) return d;
  return std::make_unique<FlattenedSamples>(std::move(d));
}

// Fashion-MNIST normalises and augments itself (today's arithmetic, bit for bit); a configured
// data.mean / data.std replaces its built-in normalisation.
std::unique_ptr<data::Dataset> make_fashion_mnist(const config::Config& c, data::Split split) {
  const bool own_stats = c.data.mean.empty();
  auto d = std::make_unique<data::FashionMnist>(
      data::FashionMnistOptions()
          .root(c.data.dir)
          .split(split)
          .normalize(own_stats)
          .augment(split == data::Split::Train && c.data.augment)
          .crop_padding(c.data.crop_padding)
          .seed(c.train.seed));
  return data::with_transforms(std::move(d), transforms_for(c, split, {}, {}).augment(false));
}

std::unique_ptr<data::Dataset> make_synthetic(const config::Config& c, data::Split split) {
  const auto& in = c.model.input;
  auto options = data::SyntheticDatasetOptions()
                     .size(c.data.synthetic_train_size + c.data.synthetic_test_size)
                     .num_classes(c.model.num_classes)
                     .sample_shape(Shape(in.begin(), in.end()))
                     .seed(c.train.seed);
  std::unique_ptr<data::Dataset> d;
  if (split == data::Split::Train)
    d = std::make_unique<data::SyntheticDataset>(options.size(c.data.synthetic_train_size));
  else
    d = std::make_unique<SyntheticTestSplit>(options, c.data.synthetic_train_size,
                                             c.data.synthetic_test_size);
  return data::with_transforms(std::move(d), transforms_for(c, split, {}, {}));
}

std::string file_in(const std::string& dir, const std::string& name) {
  return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

// data.dir/{train,test}_{samples,labels}.npy.
std::unique_ptr<data::Dataset> make_npy(const config::Config& c, data::Split split) {
  const std::string prefix = split == data::Split::Train ? "train" : "test";
  return std::make_unique<data::NpyDataset>(file_in(c.data.dir, prefix + "_samples.npy"),
                                            file_in(c.data.dir, prefix + "_labels.npy"),
                                            c.model.num_classes);
}

std::unique_ptr<data::Dataset> make_cifar(const config::Config& c, data::Split split) {
  const bool ten = c.data.dataset == config::DatasetKind::Cifar10;
  return std::make_unique<data::CifarDataset>(
      c.data.dir, ten ? data::CifarKind::Cifar10 : data::CifarKind::Cifar100, split);
}

// data.dir/{train,test}/<class>/<image>, decoded to model.input's [C, H, W].
std::unique_ptr<data::Dataset> make_image_folder(const config::Config& c, data::Split split) {
  const auto& in = c.model.input;
  SYNCBN_CHECK_AS(ConfigError, in.size() == 3, c.source,
                  ": data.dataset image_folder needs model.input [C, H, W], got ",
                  shape_str(Shape(in.begin(), in.end())));
  return std::make_unique<data::ImageFolder>(
      data::ImageFolderOptions()
          .root(file_in(c.data.dir, split == data::Split::Train ? "train" : "test"))
          .channels(in[0])
          .height(in[1])
          .width(in[2])
          .resize(c.data.resize));
}

// The user's files: ToTensor's [0, 1] values, then data.mean / data.std and data.augment.
std::unique_ptr<data::Dataset> make_from_files(const config::Config& c, data::Split split) {
  std::unique_ptr<data::Dataset> d;
  if (c.data.dataset == config::DatasetKind::Npy)
    d = make_npy(c, split);
  else if (c.data.dataset == config::DatasetKind::ImageFolder)
    d = make_image_folder(c, split);
  else
    d = make_cifar(c, split);
  return flatten_if_asked(c, data::with_transforms(std::move(d), transforms_for(c, split, {}, {})));
}

}  // namespace

data::TransformOptions transforms_for(const config::Config& c, data::Split split,
                                      std::vector<double> default_mean,
                                      std::vector<double> default_std) {
  const bool configured = !c.data.mean.empty();
  return data::TransformOptions()
      .mean(configured ? c.data.mean : std::move(default_mean))
      .std(configured ? c.data.std : std::move(default_std))
      .augment(split == data::Split::Train && c.data.augment)
      .crop_padding(c.data.crop_padding)
      .seed(c.train.seed);
}

std::unique_ptr<data::Dataset> make_dataset(const config::Config& c, data::Split split) {
  switch (c.data.dataset) {
    case config::DatasetKind::Synthetic:
      return make_synthetic(c, split);
    case config::DatasetKind::Npy:
    case config::DatasetKind::Cifar10:
    case config::DatasetKind::Cifar100:
    case config::DatasetKind::ImageFolder:
      return make_from_files(c, split);
    case config::DatasetKind::FashionMnist:
      break;
  }
  return flatten_if_asked(c, make_fashion_mnist(c, split));
}

void check_fits(const config::Config& c, const data::Dataset& d) {
  const Shape want(c.model.input.begin(), c.model.input.end());
  const char* name = config::to_string(c.data.dataset);
  SYNCBN_CHECK_AS(ConfigError, d.sample_shape() == want, c.source, ": model.input is ",
                  shape_str(want), " but data set '", name, "' has samples of shape ",
                  shape_str(d.sample_shape()));
  SYNCBN_CHECK_AS(ConfigError, d.num_classes() == c.model.num_classes, c.source,
                  ": model.num_classes is ", c.model.num_classes, " but data set '", name, "' has ",
                  d.num_classes(), " classes");
}

}  // namespace syncbn::builders
