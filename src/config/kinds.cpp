#include "syncbn/config/kinds.hpp"

#include <stdexcept>
#include <utility>

namespace syncbn::config {
namespace {
// One table per kind, so that parsing and printing cannot disagree.
template <typename Kind, std::size_t N>
using Names = std::pair<Kind, const char*>[N];

const Names<NormKind, 4> kNormNames = {{NormKind::Batch, "batch"},
                                       {NormKind::SyncBatch, "sync_batch"},
                                       {NormKind::BatchNoRunningStats, "batch_no_running_stats"},
                                       {NormKind::None, "none"}};
constexpr const char* kGroupPrefix = "group:";
const Names<DatasetKind, 6> kDatasetNames = {{DatasetKind::FashionMnist, "fashion_mnist"},
                                             {DatasetKind::Synthetic, "synthetic"},
                                             {DatasetKind::Npy, "npy"},
                                             {DatasetKind::Cifar10, "cifar10"},
                                             {DatasetKind::Cifar100, "cifar100"},
                                             {DatasetKind::ImageFolder, "image_folder"}};
const Names<ScheduleKind, 3> kScheduleNames = {{ScheduleKind::Cosine, "cosine"},
                                               {ScheduleKind::Step, "step"},
                                               {ScheduleKind::Constant, "constant"}};

template <typename Kind, std::size_t N>
const char* name_of(const Names<Kind, N>& names, Kind kind) {
  for (const auto& [k, name] : names)
    if (k == kind) return name;
  return "?";
}

template <typename Kind, std::size_t N>
std::optional<Kind> kind_of(const Names<Kind, N>& names, const std::string& text) {
  for (const auto& [kind, name] : names)
    if (text == name) return kind;
  return std::nullopt;
}

// G of "group:G": digits only (no sign, space or "0x"), positive, and within int64.
std::optional<std::int64_t> parse_groups(const std::string& text) {
  const std::string prefix = kGroupPrefix;
  if (text.rfind(prefix, 0) != 0 || text.size() == prefix.size() ||
      text.find_first_not_of("0123456789", prefix.size()) != std::string::npos)
    return std::nullopt;
  try {  // std::stoll throws std::out_of_range past 2^63-1: a bad value like any other
    const std::int64_t groups = std::stoll(text.substr(prefix.size()));
    return groups > 0 ? std::optional<std::int64_t>(groups) : std::nullopt;
  } catch (const std::out_of_range&) {
    return std::nullopt;
  }
}
}  // namespace

std::string to_string(const Norm& norm) {
  if (norm.kind == NormKind::Group) return kGroupPrefix + std::to_string(norm.groups);
  return name_of(kNormNames, norm.kind);
}
const char* to_string(DatasetKind kind) {
  return name_of(kDatasetNames, kind);
}
const char* to_string(ScheduleKind kind) {
  return name_of(kScheduleNames, kind);
}

std::optional<Norm> parse_norm(const std::string& text) {
  if (const auto kind = kind_of(kNormNames, text)) return Norm{*kind, 0};
  if (const auto groups = parse_groups(text)) return Norm{NormKind::Group, *groups};
  return std::nullopt;
}
std::optional<DatasetKind> parse_dataset(const std::string& text) {
  return kind_of(kDatasetNames, text);
}
std::optional<ScheduleKind> parse_schedule(const std::string& text) {
  return kind_of(kScheduleNames, text);
}

}  // namespace syncbn::config
