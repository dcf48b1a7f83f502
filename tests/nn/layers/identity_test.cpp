// Identity: passes values and gradients through unchanged, any shape, PyTorch's repr.
#include <gtest/gtest.h>

#include "nn/layers/layer_test_util.hpp"
#include "syncbn/nn/layers/identity.hpp"

namespace syncbn::nn {
namespace {

TEST(Identity, PassesValuesAndGradientsThrough) {
  Identity id;
  for (const Shape& shape : {Shape{5}, Shape{2, 3}, Shape{2, 3, 4, 5, 2}, Shape{0, 3}}) {
    const Tensor x = testing::random_tensor(shape, 1), dy = testing::random_tensor(shape, 2);
    EXPECT_TRUE(testing::all_close(id.forward(x), x, 0, 0));
    EXPECT_TRUE(testing::all_close(id.backward(dy), dy, 0, 0));
  }
  testing::expect_gradients_match(id, testing::random_tensor({2, 3}, 3));
}

TEST(Identity, ReprAndNoState) {
  Identity id;
  EXPECT_EQ(id.repr(), "Identity()");
  EXPECT_TRUE(id.state_dict().empty());
  EXPECT_TRUE(id.named_parameters().empty());
}

TEST(Identity, OutputIsNotTiedToTheInput) {
  // Copy-on-write: writing the output must leave the caller's input alone.
  Identity id;
  const Tensor x = Tensor::from({2}, {1, 2});
  Tensor y = id.forward(x);
  y.data<float>()[0] = 7.f;
  EXPECT_EQ(x.item(0), 1.f);
}

}  // namespace
}  // namespace syncbn::nn
