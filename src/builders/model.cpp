#include "syncbn/builders/model.hpp"

#include "syncbn/error.hpp"
#include "syncbn/nn/batchnorm.hpp"
#include "syncbn/nn/groupnorm.hpp"
#include "syncbn/nn/layers/layers.hpp"

namespace syncbn::builders {
namespace {

// norm: none. Holds nothing, passes everything through.
class Identity : public nn::Module {
 public:
  std::string type_name() const override { return "Identity"; }
  Tensor forward(const Tensor& input) override { return input; }
  Tensor backward(const Tensor& grad_output) override { return grad_output; }
};

nn::BatchNormOptions bn_options(const config::ModelConfig& m, std::int64_t channels) {
  auto o = nn::BatchNormOptions(channels).eps(m.bn_eps);
  o.momentum(m.bn_momentum < 0 ? std::nullopt : std::optional<double>(m.bn_momentum));
  return o.track_running_stats(m.norm.kind != config::NormKind::BatchNoRunningStats);
}

std::shared_ptr<nn::Module> stage(std::int64_t& inplanes, const config::StageConfig& s,
                                  const nn::NormFactory& norm, nn::Generator& gen) {
  auto blocks = std::make_shared<nn::Sequential>();
  for (std::int64_t b = 0; b < s.blocks; ++b) {
    blocks->push_back(
        std::make_shared<nn::BasicBlock>(inplanes, s.channels, b == 0 ? s.stride : 1, norm, gen));
    inplanes = s.channels;
  }
  return blocks;
}
}  // namespace

nn::NormFactory norm_factory(const config::ModelConfig& m) {
  switch (m.norm.kind) {
    case config::NormKind::None:
      return [](std::int64_t) { return std::make_shared<Identity>(); };
    case config::NormKind::Group:
      SYNCBN_CHECK_AS(ConfigError, m.norm.groups > 0, "model.norm: group:", m.norm.groups,
                      ": expected G > 0");
      return [groups = m.norm.groups](std::int64_t channels) -> std::shared_ptr<nn::Module> {
        SYNCBN_CHECK_AS(ConfigError, channels % groups == 0, "model.norm: group:", groups,
                        " does not divide a layer with ", channels,
                        " channels; pick G dividing every stage's channels");
        return std::make_shared<nn::GroupNorm>(groups, channels);
      };
    case config::NormKind::Batch:
    case config::NormKind::SyncBatch:
    case config::NormKind::BatchNoRunningStats:
      break;
  }
  return [m](std::int64_t channels) {
    return std::make_shared<nn::BatchNorm2d>(bn_options(m, channels));
  };
}

std::shared_ptr<nn::Module> build_model(const config::ModelConfig& m, std::uint64_t seed) {
  SYNCBN_CHECK_AS(ConfigError, !m.stages.empty(), "model.stages: expected at least one stage");
  nn::Generator gen(seed);
  const nn::NormFactory norm = norm_factory(m);
  auto net = std::make_shared<nn::Sequential>();
  net->push_back(
      "conv1", std::make_shared<nn::Conv2d>(
                   nn::Conv2dOptions(m.input[0], m.stem_channels, 3).padding(1).bias(false), gen));
  net->push_back("bn1", norm(m.stem_channels));
  net->push_back("relu", std::make_shared<nn::ReLU>());
  std::int64_t inplanes = m.stem_channels;
  for (std::size_t i = 0; i < m.stages.size(); ++i)
    net->push_back("layer" + std::to_string(i + 1), stage(inplanes, m.stages[i], norm, gen));
  net->push_back("avgpool", std::make_shared<nn::AdaptiveAvgPool2d>(1));
  net->push_back("flatten", std::make_shared<nn::Flatten>());
  if (m.dropout > 0) net->push_back("dropout", std::make_shared<nn::Dropout>(m.dropout, seed + 1));
  net->push_back("fc",
                 std::make_shared<nn::Linear>(nn::LinearOptions(inplanes, m.num_classes), gen));
  nn::resnet_init_(*net, gen);
  return net;
}

}  // namespace syncbn::builders
