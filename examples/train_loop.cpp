// Data-parallel training with SyncBatchNorm: mpirun -np 2 ./train_loop (or alone).
#include <cstdint>
#include <cstdio>
#include <memory>

#include "syncbn/data/dataset.hpp"
#include "syncbn/data/sampler.hpp"
#include "syncbn/dist/environment.hpp"
#include "syncbn/nn/layers/layers.hpp"
#include "syncbn/nn/sync_batchnorm.hpp"
#include "syncbn/parallel/data_parallel.hpp"
#include "syncbn/train/loss.hpp"
#include "syncbn/train/sgd.hpp"

using namespace syncbn;

int main(int argc, char** argv) {
  dist::Environment env(argc, argv);  // MPI under mpirun/srun, else one process
  return env.run("train_loop", [&] {  // an error on one rank ends every rank
    auto world = env.world();
    const auto seed = static_cast<std::uint64_t>(world->rank());  // ranks start apart...
    auto model = std::make_shared<nn::Sequential>();
    model->push_back(std::make_shared<nn::Conv2d>(nn::Conv2dOptions(1, 8, 3).padding(1), seed));
    model->push_back(std::make_shared<nn::BatchNorm2d>(8));
    model->push_back(std::make_shared<nn::ReLU>());
    model->push_back(std::make_shared<nn::Flatten>());
    model->push_back(std::make_shared<nn::Linear>(nn::LinearOptions(8 * 8 * 8, 4), seed));
    model = nn::convert_sync_batchnorm(model, world);  // statistics over every rank's slice
    nn::DistributedDataParallel ddp(model, world);     // ...rank 0's weights win here
    train::SGD sgd(model->named_parameters(), train::SGDOptions(0.05).momentum(0.9));
    train::CrossEntropyLoss loss;

    data::SyntheticDataset dataset(
        data::SyntheticDatasetOptions().size(256).num_classes(4).sample_shape({1, 8, 8}));
    data::DistributedSampler sampler(  // this rank's 16 samples of each global batch
        dataset.size(),
        data::DistributedSamplerOptions(world->size(), world->rank()).batch_size(16));
    for (int step = 0; step < 5 && sampler.has_next(); ++step) {
      const data::Batch batch = dataset.get_batch(sampler.next_batch());
      sgd.zero_grad();
      const double l = loss.forward(ddp.forward(batch.images), batch.labels);
      ddp.backward(loss.backward());  // gradients averaged over the ranks
      sgd.step();
      if (world->rank() == 0) std::printf("step %d: loss %.4f (rank 0)\n", step + 1, l);
    }
    double checksum = 0;  // the same on every rank: the replicas stayed identical
    for (const auto& [name, p] : model->named_parameters())
      for (std::int64_t i = 0; i < p->value.numel(); ++i) checksum += p->value.item(i);
    std::printf("rank %d: parameter checksum %.17g\n", world->rank(), checksum);
    return 0;
  });
}
