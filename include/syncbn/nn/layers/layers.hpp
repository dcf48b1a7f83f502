#pragma once
// Every CNN layer in one include, for model builders.
#include "syncbn/nn/layers/activation.hpp"   // ReLU, Flatten
#include "syncbn/nn/layers/basic_block.hpp"  // BasicBlock, NormFactory, resnet_init_
#include "syncbn/nn/layers/conv.hpp"         // Conv1d/2d/3d, kaiming_normal_conv_weights_
#include "syncbn/nn/layers/dropout.hpp"      // Dropout
#include "syncbn/nn/layers/identity.hpp"     // Identity
#include "syncbn/nn/layers/init.hpp"         // Generator, init::*
#include "syncbn/nn/layers/linear.hpp"       // Linear
#include "syncbn/nn/layers/pooling.hpp"  // MaxPool1d/2d/3d, AvgPool1d/2d/3d, AdaptiveAvgPool1d/2d/3d
#include "syncbn/nn/layers/size.hpp"     // SizeN<D>, Size1/2/3
