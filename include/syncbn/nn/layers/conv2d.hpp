#pragma once
// Conv2d and Conv2dOptions are ConvNd<2> and ConvOptions<2>; see conv.hpp (kept so existing
// includes still compile).
#include "syncbn/nn/layers/conv.hpp"
