#pragma once
// The kernels' name (ops::QType) for an integer activation's element type.
#include "ops/qtypes.h"
#include "runtime/op_registry.h"

namespace fgq::rt {

inline ops::QType qtype_of(const NodeView& nv, int v) {
  switch (nv.dtype(v)) {
    case DType::U8: return ops::QType::U8;
    case DType::S8: return ops::QType::S8;
    case DType::U4: return ops::QType::U4;
    case DType::F32: return ops::QType::F32;
    default: nv.error(std::string("no kernel handles ") + dtype_name(nv.dtype(v)) + " activations");
  }
}

}  // namespace fgq::rt
