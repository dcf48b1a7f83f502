#pragma once
// Compute threads of this process: one setting for the BLAS behind Linear (and Conv2d without
// oneDNN), for oneDNN's convolutions and for OpenMP regions (the BatchNorm kernels). Debian's
// libdnnl runs each primitive on the calling thread's OpenMP team, so omp_set_num_threads below
// sets its thread count too.
//
// Why OpenBLAS for the GEMMs: Debian's packaged, tuned BLAS, picking its kernels at run time for
// the CPU it runs on. It is used only in src/nn/layers (gemm.cpp, threads.cpp), so swapping it
// stays a two-file change.
//
// Data-parallel training runs one rank per core, so each rank should call set_num_threads(1)
// before training; otherwise OpenBLAS and OpenMP start a thread per core in every rank and they
// fight (OpenMP threads spin while they wait, so more threads than free cores is slower than one).
//
// Kernel choice: OpenBLAS 0.3.21 does not recognise every AVX-512 CPU (AMD Zen 4/5 get its AVX2
// "Haswell" kernels); OPENBLAS_CORETYPE=SkylakeX, set before the process starts, selects its
// AVX-512 kernels. syncbn never overrides it. blas_core() tells which kernels are in use.
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
