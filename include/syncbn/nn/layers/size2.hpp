#pragma once
// Size2 is SizeN<2>; see size.hpp (kept so existing includes still compile).
#include "syncbn/nn/layers/size.hpp"
