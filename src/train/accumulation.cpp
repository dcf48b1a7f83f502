#include "syncbn/train/accumulation.hpp"

#include "syncbn/error.hpp"

namespace syncbn::train {

AccumulatedStep accumulate_gradients(nn::DistributedDataParallel& ddp, CrossEntropyLoss& loss,
                                     std::int64_t micro,
                                     const std::function<data::Batch()>& next_batch,
                                     std::vector<float>& extra) {
  SYNCBN_CHECK(micro >= 1, "accumulate_gradients: need at least one micro-batch, got ", micro);
  SYNCBN_CHECK(!extra.empty(), "accumulate_gradients: extra needs a slot for the loss");
  const double scale = 1.0 / static_cast<double>(micro);
  AccumulatedStep out;
  for (std::int64_t i = 0; i < micro; ++i) {
    const data::Batch batch = next_batch();
    out.samples += static_cast<std::int64_t>(batch.labels.size());
    out.local_loss += loss.forward(ddp.forward(batch.images), batch.labels) * scale;
    const Tensor grad = loss.backward(scale);
    if (i + 1 < micro) {
      ddp.module()->backward(grad);  // no allreduce yet: gradients add up locally
      continue;
    }
    extra[0] = static_cast<float>(out.local_loss);
    ddp.backward(grad, extra);
  }
  return out;
}

}  // namespace syncbn::train
