// The sampler against PyTorch's DistributedSampler itself: goldens/distributed_sampler.txt
// (generate_sampler_goldens.py) holds what torch gives every rank without shuffling. With
// shuffling the permutation is ours (torch.randperm cannot be reproduced bit for bit), but the
// rule must still be PyTorch's: rank r's k-th index is perm[p], where p is the k-th index
// PyTorch's unshuffled rule gives rank r, and perm is the whole order (the W = 1 sampler's).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "syncbn/data/sampler.hpp"

namespace syncbn::data {
namespace {

struct Case {
  std::int64_t n, world, rank;
  bool drop_last;
  std::vector<std::int64_t> indices;
};

std::vector<Case> load_goldens() {
  std::ifstream in(SYNCBN_DATA_GOLDEN_DIR "/distributed_sampler.txt");
  std::vector<Case> cases;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    Case c;
    int drop = 0;
    char colon = 0;
    fields >> c.n >> c.world >> drop >> c.rank >> colon;
    c.drop_last = drop != 0;
    for (std::int64_t i; fields >> i;) c.indices.push_back(i);
    cases.push_back(std::move(c));
  }
  return cases;
}

DistributedSampler sampler_for(const Case& c, bool shuffle) {
  return DistributedSampler(
      c.n,
      DistributedSamplerOptions(c.world, c.rank).drop_last(c.drop_last).shuffle(shuffle).seed(9));
}

TEST(SamplerGoldens, UnshuffledMatchesPyTorch) {
  const auto cases = load_goldens();
  ASSERT_EQ(cases.size(), 420u) << "goldens missing or truncated";
  for (const Case& c : cases)
    EXPECT_EQ(sampler_for(c, false).indices(), c.indices)
        << "N " << c.n << " W " << c.world << " drop_last " << c.drop_last << " rank " << c.rank;
}

TEST(SamplerGoldens, ShuffledFollowsPyTorchsRuleOnOurPermutation) {
  for (const Case& c : load_goldens()) {
    for (std::int64_t epoch : {0, 3}) {
      DistributedSampler whole(c.n, DistributedSamplerOptions(1, 0).seed(9));
      whole.set_epoch(epoch);
      DistributedSampler mine = sampler_for(c, true);
      mine.set_epoch(epoch);
      std::vector<std::int64_t> expected;
      for (std::int64_t p : c.indices)
        expected.push_back(whole.indices()[static_cast<std::size_t>(p)]);
      EXPECT_EQ(mine.indices(), expected)
          << "N " << c.n << " W " << c.world << " drop_last " << c.drop_last << " rank " << c.rank;
    }
  }
}

}  // namespace
}  // namespace syncbn::data
