#pragma once
// Per-layer-type CPU time for bench/train_bench.cpp --per-layer: every leaf module is wrapped in
// a timer that adds its forward and backward time to a table keyed by the layer's type. The
// clock is the thread's CPU time (CLOCK_THREAD_CPUTIME_ID, one system call per read), so time
// spent descheduled while other processes share the cores is left out.
#include <ctime>
#include <map>
#include <memory>
#include <string>

#include "syncbn/nn/module.hpp"

namespace bench {

// CPU seconds this thread has run.
inline double thread_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// Forward and backward seconds of every wrapped layer, by layer type.
struct LayerTimes {
  std::map<std::string, double> forward, backward;
  std::map<std::string, long> calls;
};

// Times one module's forward and backward into `times` under its type name.
class Timed : public syncbn::nn::Module {
 public:
  Timed(std::shared_ptr<Module> inner, LayerTimes* times)
      : inner_(register_module("inner", std::move(inner))), times_(times) {}
  std::string type_name() const override { return inner_->type_name(); }
  syncbn::Tensor forward(const syncbn::Tensor& x) override {
    return time(times_->forward, [&] { return inner_->forward(x); });
  }
  syncbn::Tensor backward(const syncbn::Tensor& g) override {
    return time(times_->backward, [&] { return inner_->backward(g); });
  }

 private:
  template <typename Fn>
  syncbn::Tensor time(std::map<std::string, double>& into, Fn&& fn) {
    const double t0 = thread_seconds();
    syncbn::Tensor y = fn();
    into[inner_->type_name()] += thread_seconds() - t0;
    ++times_->calls[inner_->type_name()];
    return y;
  }
  std::shared_ptr<Module> inner_;
  LayerTimes* times_;
};

// Wraps every leaf (a module without children) below `m`.
inline void wrap_leaves(syncbn::nn::Module& m, LayerTimes* times) {
  const auto children = m.named_children();  // a copy: replace_child edits the list
  for (const auto& [name, child] : children) {
    if (child->named_children().empty())
      m.replace_child(name, std::make_shared<Timed>(child, times));
    else
      wrap_leaves(*child, times);
  }
}

}  // namespace bench
