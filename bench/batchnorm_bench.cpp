// BatchNorm2d at one thread against the machine's memory-traffic bound, for bench/run_batchnorm.sh.
//
// Before any benchmark runs, main() measures single-thread streaming bandwidth: STREAM-style
// copy, scale and triad plus a copy with non-temporal stores, over buffers many times the L3,
// each the best of several repetitions; the bound uses the best of the four. Each row reports
// the time its compulsory traffic would take at that bandwidth:
//   train-forward:    3 x bytes (statistics read x; normalise reads x, writes y)
//   forward+backward: 8 x bytes (forward 3; backward 5: sums read dy and x, dx reads both and
//                     writes)
//   eval-forward:     2 x bytes (read x, write y)
// Counters (per repetition; the JSON also carries their median and min): bound_ms, x_bound =
// measured / bound (1.0 = at the bound), stream_bound_ms (the bound at the best regular-store
// STREAM rate, i.e. without the non-temporal copy), GBps = counted traffic / measured time, faults
// = minor page faults per iteration. Timing is wall clock (UseRealTime). Inputs are reused across
// iterations, as in a training loop; a 12.8 MB tensor can partly stay in a 32 MiB L3, so a ratio
// below 1 means "faster than DRAM streaming", not a broken bound.
// Rows "BatchNorm2d/..." time the module (forward keeps its input for backward by sharing it);
// rows "Kernels/..." time the functional passes alone, chained as the module chains them.
#include <benchmark/benchmark.h>
#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "syncbn/nn/batchnorm.hpp"
#include "syncbn/nn/functional.hpp"
#include "syncbn/tensor.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace {
using syncbn::Tensor;
using syncbn::nn::BatchNorm2d;
using Clock = std::chrono::steady_clock;

struct Dims {
  std::int64_t n, c, h, w;
};
constexpr Dims kShapes[] = {{32, 64, 56, 56}, {64, 256, 14, 14}, {128, 512, 7, 7}};

enum class Mode { TrainForward, ForwardBackward, EvalForward };
struct ModeInfo {
  Mode mode;
  const char* name;
  double passes;  // compulsory traffic in multiples of the input's bytes
};
constexpr ModeInfo kModes[] = {{Mode::TrainForward, "train_forward", 3},
                               {Mode::ForwardBackward, "forward_backward", 8},
                               {Mode::EvalForward, "eval_forward", 2}};

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// ---- Streaming bandwidth ------------------------------------------------------------------

// Best bytes/second of `kernel` over `reps` runs; `bytes` is the traffic STREAM counts.
template <typename Kernel>
double best_rate(int reps, double bytes, Kernel&& kernel) {
  double best = 0;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    kernel();
    best = std::max(best, bytes / seconds_since(t0));
  }
  return best;
}

struct Bandwidth {
  double copy, scale, triad, copy_nt;
  double stream() const { return std::max({copy, scale, triad}); }  // regular stores only
  double best() const { return std::max(stream(), copy_nt); }
};

// Copy with non-temporal stores (no read-for-ownership): the kernels write large outputs this
// way, so the bound must allow for it. Copies the 64-byte aligned part of [0, n).
void copy_nt(const float* src, float* dst, std::size_t n) {
  std::size_t i = (64 - reinterpret_cast<std::uintptr_t>(dst) % 64) % 64 / sizeof(float);
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16) _mm512_stream_ps(dst + i, _mm512_loadu_ps(src + i));
  _mm_sfence();
#elif defined(__x86_64__)
  for (; i + 4 <= n; i += 4) _mm_stream_ps(dst + i, _mm_loadu_ps(src + i));
  _mm_sfence();
#else
  std::memcpy(dst + i, src + i, (n - i) * sizeof(float));
#endif
}

// One thread, three arrays of 32 Mi floats (128 MiB each, 4x a 32 MiB L3), first-touched
// before timing so page faults are not counted.
Bandwidth measure_bandwidth() {
  const std::size_t n = std::size_t{1} << 25;
  std::vector<float> a(n, 1.0f), b(n, 2.0f), c(n, 0.5f);
  float* pa = a.data();
  float* pb = b.data();
  float* pc = c.data();
  const float s = 1.0001f;
  const double bytes2 = 2.0 * n * sizeof(float), bytes3 = 3.0 * n * sizeof(float);
  const int reps = 8;
  Bandwidth bw{};
  bw.copy = best_rate(reps, bytes2, [&] {
#pragma omp simd
    for (std::size_t i = 0; i < n; ++i) pc[i] = pa[i];
  });
  bw.scale = best_rate(reps, bytes2, [&] {
#pragma omp simd
    for (std::size_t i = 0; i < n; ++i) pb[i] = s * pc[i];
  });
  bw.triad = best_rate(reps, bytes3, [&] {
#pragma omp simd
    for (std::size_t i = 0; i < n; ++i) pa[i] = pb[i] + s * pc[i];
  });
  bw.copy_nt = best_rate(reps, bytes2, [&] { copy_nt(pa, pc, n); });  // all but < 128 B
  benchmark::DoNotOptimize(pa[n / 2]);
  benchmark::DoNotOptimize(pc[n / 2]);
  return bw;
}

// ---- BatchNorm2d rows ---------------------------------------------------------------------

Tensor random_tensor(const Dims& d, unsigned seed, float mean, float stddev) {
  Tensor t({d.n, d.c, d.h, d.w});
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(mean, stddev);
  float* p = t.data<float>();
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = dist(gen);
  return t;
}

long minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

void run_once(BatchNorm2d& bn, Mode mode, const Tensor& x, const Tensor& dy) {
  Tensor y = bn.forward(x);
  benchmark::DoNotOptimize(y.raw());
  if (mode == Mode::ForwardBackward) {
    Tensor dx = bn.backward(dy);
    benchmark::DoNotOptimize(dx.raw());
  }
  benchmark::ClobberMemory();
}

// The functional kernels alone, as the module chains them: what the passes themselves cost,
// without the module's bookkeeping.
void run_kernels(BatchNorm2d& bn, Mode mode, const Tensor& x, const Tensor& dy) {
  namespace F = syncbn::nn::functional;
  const double eps = bn.options().eps();
  F::ChannelMoments m;
  std::vector<double> mean, var;
  if (mode == Mode::EvalForward) {
    mean = F::to_doubles(bn.running_mean), var = F::to_doubles(bn.running_var);
  } else {
    m = F::channel_moments(x);
    mean = m.mean;
    for (double m2 : m.m2) var.push_back(m2 / static_cast<double>(m.count));
  }
  const std::vector<double> invstd = F::invstd_from_var(var, eps);
  Tensor y = F::normalize(x, mean, invstd, bn.weight.value, bn.bias.value);
  benchmark::DoNotOptimize(y.raw());
  if (mode == Mode::ForwardBackward) {
    const F::GradSums g = F::grad_sums(dy, x, mean, invstd);
    Tensor dx = F::grad_input_train(dy, x, mean, invstd, bn.weight.value, g, m.count);
    benchmark::DoNotOptimize(dx.raw());
  }
  benchmark::ClobberMemory();
}

// A row's module and tensors, kept across its repetitions so that every repetition measures
// the steady state (setting them up again would reshuffle the heap and page-fault inside the
// timed loop); replaced when the next row starts.
struct Row {
  Row(const Dims& d, Mode mode)
      : bn(d.c), x(random_tensor(d, 1, 0.5f, 2.0f)), dy(random_tensor(d, 2, 0.0f, 1.0f)) {
    if (mode != Mode::EvalForward) return;
    bn.running_mean.fill_(0.25);
    bn.running_var.fill_(3.0);
    bn.eval();
  }
  BatchNorm2d bn;
  Tensor x, dy;
};

Row& row_for(const std::string& name, const Dims& d, Mode mode) {
  static std::string current;
  static std::unique_ptr<Row> row;
  if (current != name) {
    row.reset();
    row = std::make_unique<Row>(d, mode);
    current = name;
  }
  return *row;
}

void bench_batchnorm(benchmark::State& state, const std::string& name, Dims d, ModeInfo m,
                     bool kernels, Bandwidth bw) {
  Row& row = row_for(name, d, m.mode);
  const double bytes = static_cast<double>(row.x.nbytes()) * m.passes;
  const auto run = kernels ? run_kernels : run_once;
  const long faults0 = minor_faults();
  const auto t0 = Clock::now();
  for (auto _ : state) run(row.bn, m.mode, row.x, row.dy);
  const double per_iter = seconds_since(t0) / static_cast<double>(state.iterations());
  const double bound = bytes / bw.best();
  state.counters["bound_ms"] = bound * 1e3;
  state.counters["stream_bound_ms"] = bytes / bw.stream() * 1e3;
  state.counters["traffic_bytes"] = bytes;
  state.counters["x_bound"] = per_iter / bound;
  state.counters["GBps"] = bytes / per_iter * 1e-9;
  state.counters["faults"] =
      static_cast<double>(minor_faults() - faults0) / static_cast<double>(state.iterations());
}

// "BatchNorm2d/<mode>/<shape>" for the module, "Kernels/<mode>/<shape>" for run_kernels.
std::string row_name(const Dims& d, const ModeInfo& m, bool kernels) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%s/%s/%ldx%ldx%ldx%ld", kernels ? "Kernels" : "BatchNorm2d",
                m.name, static_cast<long>(d.n), static_cast<long>(d.c), static_cast<long>(d.h),
                static_cast<long>(d.w));
  return buf;
}

void register_rows(const Bandwidth& bw) {
  for (bool kernels : {false, true})
    for (const Dims& d : kShapes)
      for (const ModeInfo& m : kModes) {
        const std::string name = row_name(d, m, kernels);
        benchmark::RegisterBenchmark(name.c_str(), bench_batchnorm, name, d, m, kernels, bw)
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond)
            ->MinWarmUpTime(0.05)
            ->MinTime(0.05)
            ->Repetitions(9)
            ->ComputeStatistics("min", [](const std::vector<double>& v) {
              return *std::min_element(v.begin(), v.end());
            });
      }
}

void add_bandwidth_context(const Bandwidth& bw) {
  const auto gb = [](double v) { return std::to_string(v * 1e-9); };
  benchmark::AddCustomContext("stream_copy_GBps", gb(bw.copy));
  benchmark::AddCustomContext("stream_scale_GBps", gb(bw.scale));
  benchmark::AddCustomContext("stream_triad_GBps", gb(bw.triad));
  benchmark::AddCustomContext("stream_copy_nt_GBps", gb(bw.copy_nt));
  benchmark::AddCustomContext("bound_GBps", gb(bw.best()));
  benchmark::AddCustomContext("omp_threads", std::to_string(omp_get_max_threads()));
}

// --bandwidth-only: prints {"context": {...}} with the four rates and exits; run_batchnorm.sh
// probes before and after the rows and bounds with the best probe.
int print_bandwidth() {
  const Bandwidth bw = measure_bandwidth();
  std::printf(
      "{\"context\": {\"stream_copy_GBps\": %f, \"stream_scale_GBps\": %f, "
      "\"stream_triad_GBps\": %f, \"stream_copy_nt_GBps\": %f}}\n",
      bw.copy * 1e-9, bw.scale * 1e-9, bw.triad * 1e-9, bw.copy_nt * 1e-9);
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  // One thread unless OMP_NUM_THREADS asks otherwise (the runner sets it to 1 explicitly).
  if (std::getenv("OMP_NUM_THREADS") == nullptr) omp_set_num_threads(1);
  if (argc == 2 && std::string(argv[1]) == "--bandwidth-only") return print_bandwidth();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const Bandwidth bw = measure_bandwidth();
  add_bandwidth_context(bw);
  register_rows(bw);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
