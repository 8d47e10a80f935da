#pragma once
// Graph rewrites. Order used by the loader (graph/prepare.h):
//   drop_identities -> fold_constants -> make_pads_explicit -> fold_batchnorm
//   -> fuse_pad_into_conv_pool -> (quantization) -> fuse_conv_activation
#include "graph/ir.h"

namespace fgq {

// Remove Identity and Dropout (inference) nodes, rewiring their consumers.
void drop_identities(Graph& g);
// Evaluate nodes whose inputs are all constants (Shape/Gather/Concat/Unsqueeze/Reshape chains
// of exported Flatten logic, etc.) into constants. Shape(activation) folds too: dim 0 is the
// batch, and a Reshape target built from it keeps the batch as 0 ("copy input dim"). Infers
// shapes at batch 1 along the way.
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

// For an Add that fuse_conv_activation folds into a Conv: the index (0 or 1) of the operand
// whose producing Conv absorbs it (the other one becomes the conv's residual input); else -1.
// Quantization uses it to know which operand the integer pipeline stores as a residual.
int fused_add_operand(const Graph& g, int add_node);

// Replaces auto_pad (SAME_UPPER/SAME_LOWER/VALID) on Conv and pools by explicit "pads".
// Needs inferred shapes (the padding depends on the input size).
void make_pads_explicit(Graph& g);
// A constant zero Pad on H/W whose only reader is a Conv (any), or a MaxPool (ceil_mode 0)
// reading a non-negative value (a Relu output or a Conv with activation="Relu"), is merged into
// that op's pads. Run make_pads_explicit first: ops still using auto_pad are left alone.
void fuse_pad_into_conv_pool(Graph& g);

}  // namespace fgq
