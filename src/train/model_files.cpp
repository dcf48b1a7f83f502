#include "syncbn/train/model_files.hpp"

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "syncbn/builders/model.hpp"
#include "syncbn/error.hpp"
#include "syncbn/io/safetensors.hpp"
#include "syncbn/train/inference.hpp"

namespace syncbn::train {

void check_init_from(const config::Config& config, const std::string& path) {
  try {
    const auto model = builders::build_model(config.model, config.train.seed);
    load_model_state(path, *model);
  } catch (const ConfigError&) {
    throw;  // the model itself is refused: reported as such, not as the file's fault
  } catch (const Error& e) {
    // load_model_state's message starts with the path already.
    throw ConfigError(std::string("--init-from: ") + e.what());
  }
}

void export_model(const std::string& path, const nn::Module& model) {
  io::TensorMap tensors;
  for (const auto& [key, value] : model.state_dict()) {
    if (value.dtype() == DType::Float32) {
      const float* p = value.data<float>();
      for (std::int64_t i = 0; i < value.numel(); ++i)
        SYNCBN_CHECK(std::isfinite(p[i]), "--export ", path, ": refusing to write '", key,
                     "', which holds NaN or Inf");
    }
    tensors[key] = value;
  }
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  io::save_safetensors(path, tensors, {{"format", "pt"}});
}

std::string eval_only_record(double test_loss, double test_accuracy, std::int64_t samples) {
  char buf[160];
  std::snprintf(buf, sizeof buf,
                "{\"eval_only\": true, \"test_loss\": %.9g, \"test_accuracy\": %.9g, "
                "\"test_samples\": %lld}",
                test_loss, test_accuracy, static_cast<long long>(samples));
  return buf;
}

}  // namespace syncbn::train
