#pragma once
// Conv / pool window attributes of a node, parsed by graph/window.h (the same arithmetic as
// shape inference), as the int fields the kernels take.
#include "graph/window.h"
#include "runtime/op_registry.h"

namespace fgq::rt {

struct Window {
  int KH, KW, SH, SW, DH, DW, PT, PL, PB, PR;
};

inline Window node_window(const NodeView& nv, int64_t kh, int64_t kw, int64_t H, int64_t W) {
  const Window2d w = window_of(nv.node(), kh, kw, H, W, nv.graph().source);
  return Window{int(w.kh), int(w.kw), int(w.sh), int(w.sw), int(w.dh),
                int(w.dw), int(w.pt), int(w.pl), int(w.pb), int(w.pr)};
}

}  // namespace fgq::rt
