#include "print_model.hpp"

#include <ostream>

#include "syncbn/builders/model.hpp"
#include "syncbn/train/norm_conversion.hpp"

namespace syncbn::launcher {
namespace {

std::string shape_text(const Tensor& t) {
  std::string text = "[";
  for (std::size_t i = 0; i < t.shape().size(); ++i)
    text += (i ? ", " : "") + std::to_string(t.shape()[i]);
  return text + "]";
}

// A module's own entries are the names without a dot; named_modules() gives PyTorch's
// state_dict order: each module's parameters, then its buffers, then its children.
void print_state_dict(nn::Module& model, std::ostream& out) {
  out << "state_dict:\n";
  for (const auto& [prefix, module] : model.named_modules()) {
    const std::string dotted = prefix.empty() ? "" : prefix + ".";
    for (const auto& [name, p] : module->named_parameters())
      if (name.find('.') == std::string::npos)
        out << "  " << dotted << name << " " << shape_text(p->value) << "\n";
    for (const auto& [name, b] : module->named_buffers())
      if (name.find('.') == std::string::npos)
        out << "  " << dotted << name << " " << shape_text(*b)
            << (b->dtype() == DType::Int64 ? " int64" : "") << "\n";
  }
}

void print_conversion(const config::Config& c, const nn::Module& model, std::ostream& out) {
  const auto paths = train::convertible_batchnorms(model);
  if (paths.empty() || !train::conversion_asked(c.model)) {
    out << "conversion: none (" << paths.size() << " BatchNorm layers stay as written)\n";
    return;
  }
  const std::int64_t k = c.model.sync_group_size;
  out << "conversion: on more than one rank, these " << paths.size()
      << " BatchNorm layers become SyncBatchNorm"
      << (k > 0 ? " synchronised in groups of " + std::to_string(k) + " consecutive ranks" : "")
      << ":\n";
  for (const auto& path : paths) out << "  " << path << "\n";
}

}  // namespace

void print_model(const config::Config& c, std::ostream& out) {
  const auto model = builders::build_model(c.model, c.train.seed);
  out << model->repr() << "\n";
  print_conversion(c, *model, out);
  std::int64_t count = 0;
  for (const auto& [name, p] : model->named_parameters()) count += p->value.numel();
  out << "parameters: " << count << "\n";
  print_state_dict(*model, out);
}

}  // namespace syncbn::launcher
