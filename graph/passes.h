#pragma once
// Graph rewrites. Order used by the loader:
//   drop_identities -> fold_constants -> fold_batchnorm -> (quantization) -> fuse_conv_activation
#include "graph/ir.h"

namespace fgq {

// Remove Identity and Dropout (inference) nodes, rewiring their consumers.
void drop_identities(Graph& g);
// Evaluate nodes whose inputs are all constants (Shape/Gather/Concat/Unsqueeze/Reshape chains
// of exported Flatten logic, etc.) into constants.
void fold_constants(Graph& g);
// Fold BatchNormalization that follows a Conv (sole consumer) into the conv weights and bias.
// The BN parameters stay on the conv node as attributes "bn_gamma", "bn_beta", "bn_mean",
// "bn_var" (floats) and "bn_eps" (float) so quantization can re-estimate statistics later.
// A BN without a preceding conv becomes a per-channel affine node "ChannelAffine"
// (inputs: x, scale[C], shift[C]).
void fold_batchnorm(Graph& g);
// Conv -> Relu becomes Conv with attribute activation="Relu"; Conv -> Add(other) [-> Relu]
// becomes Conv with a 4th input (the residual) and activation. Only when the intermediate value
// has a single consumer and is not a graph output.
void fuse_conv_activation(Graph& g);

}  // namespace fgq
