// PyTorch conformance of Conv1d/2d/3d and the pooling layers: replays the goldens that
// generate_layer_goldens.py wrote with PyTorch 1.13 (layout in its docstring): the module built
// from the case's arguments must print PyTorch's repr and reproduce its output and its input,
// weight and bias gradients. One gtest per case.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "nn/layers/layer_test_util.hpp"
#include "syncbn/io/npy.hpp"
#include "syncbn/nn/layers/conv.hpp"
#include "syncbn/nn/layers/pooling.hpp"

namespace syncbn::nn {
namespace {
namespace fs = std::filesystem;
const fs::path kGoldens = SYNCBN_LAYER_GOLDEN_DIR;
// Float32 arithmetic against PyTorch's float64 run, as the direct-convolution tests.
constexpr double kRtol = 1e-4, kAtol = 1e-4;

struct Case {
  std::string name;
  std::map<std::string, std::string> args;
  const std::string& at(const std::string& key) const { return args.at(key); }
  bool has(const std::string& key) const { return args.count(key) > 0; }
};

Case parse_line(const std::string& line) {
  std::istringstream in(line);
  Case c;
  in >> c.name;
  for (std::string field; in >> field;) {
    const auto eq = field.find('=');
    c.args[field.substr(0, eq)] = eq == std::string::npos ? "" : field.substr(eq + 1);
  }
  return c;
}

// Every case, or one named "missing_goldens" that fails: a lost directory must not pass.
std::vector<Case> read_cases() {
  std::ifstream in(kGoldens / "cases.txt");
  std::vector<Case> cases;
  for (std::string line; in && std::getline(in, line);)
    if (!line.empty()) cases.push_back(parse_line(line));
  if (cases.empty()) cases.push_back({"missing_goldens", {}});
  return cases;
}

// "3" is a scalar (as PyTorch's kernel_size=3), "3,2" one size per dimension.
template <std::size_t D>
SizeN<D> size_arg(const Case& c, const std::string& key, std::int64_t fallback) {
  if (!c.has(key)) return SizeN<D>(fallback);
  std::vector<std::int64_t> values;
  std::istringstream in(c.at(key));
  for (std::string part; std::getline(in, part, ',');) values.push_back(std::stoll(part));
  return values.size() == 1 ? SizeN<D>(values[0]) : SizeN<D>(values);
}

std::int64_t int_arg(const Case& c, const std::string& key, std::int64_t fallback) {
  return c.has(key) ? std::stoll(c.at(key)) : fallback;
}

template <std::size_t D>
std::unique_ptr<Module> make_conv(const Case& c) {
  auto o = ConvOptions<D>(int_arg(c, "in_channels", 0), int_arg(c, "out_channels", 0),
                          size_arg<D>(c, "kernel_size", 0))
               .stride(size_arg<D>(c, "stride", 1))
               .padding(size_arg<D>(c, "padding", 0))
               .dilation(size_arg<D>(c, "dilation", 1))
               .groups(int_arg(c, "groups", 1))
               .bias(int_arg(c, "bias", 1) != 0);
  return std::make_unique<ConvNd<D>>(o);
}

template <std::size_t D>
std::unique_ptr<Module> make_max_pool(const Case& c) {
  const SizeN<D> k = size_arg<D>(c, "kernel_size", 0);
  auto o = MaxPoolOptions<D>(k)
               .stride(c.has("stride") ? size_arg<D>(c, "stride", 0) : k)
               .padding(size_arg<D>(c, "padding", 0))
               .dilation(size_arg<D>(c, "dilation", 1))
               .ceil_mode(int_arg(c, "ceil_mode", 0) != 0);
  return std::make_unique<MaxPoolNd<D>>(o);
}

template <std::size_t D>
std::unique_ptr<Module> make_avg_pool(const Case& c) {
  const SizeN<D> k = size_arg<D>(c, "kernel_size", 0);
  auto o = AvgPoolOptions<D>(k)
               .stride(c.has("stride") ? size_arg<D>(c, "stride", 0) : k)
               .padding(size_arg<D>(c, "padding", 0))
               .ceil_mode(int_arg(c, "ceil_mode", 0) != 0)
               .count_include_pad(int_arg(c, "count_include_pad", 1) != 0);
  return std::make_unique<AvgPoolNd<D>>(o);
}

template <std::size_t D>
std::unique_ptr<Module> make_d(const std::string& kind, const Case& c) {
  if (kind == "conv") return make_conv<D>(c);
  if (kind == "max_pool") return make_max_pool<D>(c);
  if (kind == "avg_pool") return make_avg_pool<D>(c);
  if (kind == "adaptive_avg_pool")
    return std::make_unique<AdaptiveAvgPoolNd<D>>(size_arg<D>(c, "output_size", 0));
  return nullptr;
}

// "conv2d" -> a Conv2d, and so on; null for an unknown type.
std::unique_ptr<Module> make_module(const Case& c) {
  const std::string& type = c.at("type");
  const std::string kind = type.substr(0, type.size() - 2);
  switch (type[type.size() - 2]) {
    case '1':
      return make_d<1>(kind, c);
    case '2':
      return make_d<2>(kind, c);
    case '3':
      return make_d<3>(kind, c);
    default:
      return nullptr;
  }
}

Tensor golden(const Case& c, const std::string& stem) {
  return io::load_npy((kGoldens / c.name / (stem + ".npy")).string());
}

std::string golden_repr(const Case& c) {
  std::ifstream in(kGoldens / c.name / "repr.txt");
  std::string line;
  std::getline(in, line);
  return line;
}

class LayerGoldens : public ::testing::TestWithParam<Case> {};

TEST_P(LayerGoldens, MatchPyTorch) {
  const Case& c = GetParam();
  ASSERT_NE(c.name, "missing_goldens")
      << "no cases in " << kGoldens << "; run tests/nn/layers/generate_layer_goldens.py";
  auto module = make_module(c);
  ASSERT_NE(module, nullptr) << "unknown type " << c.at("type");
  EXPECT_EQ(module->repr(), golden_repr(c));
  for (auto& [name, p] : module->named_parameters()) p->value = golden(c, name);
  EXPECT_TRUE(
      testing::all_close(module->forward(golden(c, "input")), golden(c, "output"), kRtol, kAtol));
  EXPECT_TRUE(testing::all_close(module->backward(golden(c, "grad_output")), golden(c, "dx"), kRtol,
                                 kAtol));
  for (auto& [name, p] : module->named_parameters())
    EXPECT_TRUE(testing::all_close(p->grad, golden(c, "d" + name), kRtol, kAtol)) << name;
}

std::string test_name(const ::testing::TestParamInfo<Case>& info) {
  return info.param.name;
}

INSTANTIATE_TEST_SUITE_P(PyTorch, LayerGoldens, ::testing::ValuesIn(read_cases()), test_name);

}  // namespace
}  // namespace syncbn::nn
