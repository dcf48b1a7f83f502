#pragma once
// Compute threads of this process: one setting for the BLAS behind Linear (and Conv2d without
// oneDNN), for oneDNN's convolutions and for OpenMP regions (the BatchNorm kernels).
//
// Conv2d runs on oneDNN when syncbn was built with it (see syncbn/nn/layers/conv2d.hpp).
// Debian's libdnnl uses the OpenMP runtime (libgomp, the one GCC's -fopenmp links), and runs
// each primitive on the calling thread's OpenMP team, so omp_set_num_threads below sets its
// thread count too.
//
// Why OpenBLAS for the GEMMs: it is Debian's packaged, tuned BLAS (libopenblas-dev), it picks
// its kernels at run time for the CPU it runs on, and a GEMM is where most Linear (and im2col
// Conv2d) time goes. MKL is not in Debian main and is tuned for Intel; BLIS is comparable but
// rarer in deployments; Eigen or hand-written loops reach a fraction of the throughput. OpenBLAS
// is used only in src/nn/layers (gemm.cpp, threads.cpp), so swapping it stays a two-file change.
//
// Data-parallel training runs one rank per core, so each rank should call set_num_threads(1)
// before training; otherwise OpenBLAS and OpenMP start a thread per core in every rank and they
// fight. (OpenMP threads spin while they wait, so more threads than free cores is slower than
// one: 2 threads while other processes kept both cores busy trained several times slower.)
//
// Kernel choice: OpenBLAS 0.3.21 does not recognise every AVX-512 CPU (AMD Zen 4/5 EPYCs get
// its AVX2 "Haswell" kernels). Its AVX-512 kernels are then chosen with the environment
// variable OPENBLAS_CORETYPE=SkylakeX, which must be set before the process starts (OpenBLAS
// reads it when the library loads); on the target EPYC that made im2col Conv2d 1.3-1.6x faster.
// Some deployments pin OPENBLAS_CORETYPE=Haswell on purpose (older OpenBLAS builds miscompute
// or crash with autodetection on these CPUs); syncbn never overrides it. oneDNN picks its own
// AVX-512 kernels regardless, so with oneDNN only Linear uses OpenBLAS's choice.
// blas_core() tells which kernels are in use, for the training log.
#include <string>

namespace syncbn {

// Sets the thread count for OpenBLAS and for OpenMP (omp_set_num_threads, which oneDNN follows)
// for the calling thread; threads started later (e.g. in-process ranks) begin with OpenMP's
// default and call it themselves. Throws ValueError when n < 1. Call it at start-up, before any
// layer runs: it does not wait for GEMMs already running on other threads.
void set_num_threads(int n);

// The thread count OpenBLAS will use for the next GEMM.
int get_num_threads();

// The OpenBLAS kernel family in use, e.g. "Haswell" or "SkylakeX".
std::string blas_core();

}  // namespace syncbn
