#pragma once
// The config keys that choose a kind of thing (model.norm, data.dataset, schedule.name), as
// enums. The config reader parses their text once, at load; everything after it switches on the
// enum, so a new kind is added here and the compiler lists every place that must handle it.
// to_string gives back the text the config file uses (to_yaml writes it, messages quote it).
#include <cstdint>
#include <optional>
#include <string>

namespace syncbn::config {

// model.norm: batch | sync_batch | group:G | batch_no_running_stats | none.
enum class NormKind { Batch, SyncBatch, Group, BatchNoRunningStats, None };

struct Norm {
  NormKind kind = NormKind::SyncBatch;
  std::int64_t groups = 0;  // G of group:G (> 0); 0 for every other kind
  bool operator==(const Norm& o) const { return kind == o.kind && groups == o.groups; }
  bool operator!=(const Norm& o) const { return !(*this == o); }
};

// data.dataset: fashion_mnist | synthetic.
enum class DatasetKind { FashionMnist, Synthetic, Npy, Cifar10, Cifar100, ImageFolder };

// schedule.name: cosine | step | constant.
enum class ScheduleKind { Cosine, Step, Constant };

// The config file's text: "sync_batch", "group:4", "fashion_mnist", "cosine".
std::string to_string(const Norm& norm);
const char* to_string(DatasetKind kind);
const char* to_string(ScheduleKind kind);

// The kind `text` names, or nullopt when it names none (group:G needs 0 < G < 2^63).
std::optional<Norm> parse_norm(const std::string& text);
std::optional<DatasetKind> parse_dataset(const std::string& text);
std::optional<ScheduleKind> parse_schedule(const std::string& text);

}  // namespace syncbn::config
