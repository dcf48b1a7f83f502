// Uses dist::Environment from the installed package: alone it is a world of one, and a
// SyncBatchNorm on that world is plain BatchNorm. Must run with no CUDA library present.
#include <cmath>
#include <cstdio>

#include "syncbn/dist/environment.hpp"
#include "syncbn/nn/sync_batchnorm.hpp"

int main(int argc, char** argv) {
  syncbn::dist::Environment env(argc, argv);
  return env.run("environment_consumer", [&] {
    syncbn::nn::SyncBatchNorm bn(syncbn::nn::BatchNormOptions(1), env.world());
    syncbn::Tensor y = bn.forward(syncbn::Tensor::from({2, 1}, {1.f, 3.f}));
    std::printf("environment_consumer: %s, output %g %g\n", env.describe().c_str(),
                y.data<float>()[0], y.data<float>()[1]);
    return std::abs(y.data<float>()[0] + y.data<float>()[1]) < 1e-6 ? 0 : 1;
  });
}
