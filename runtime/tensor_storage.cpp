#include "runtime/tensor_storage.h"

#include "graph/error.h"
#include "ops/qtypes.h"

namespace fgq::rt {

int64_t bytes_per_image(DType t, const Shape& s, const std::string& what) {
  switch (t) {
    case DType::F32: return 4 * numel(s);
    case DType::U8: case DType::S8: case DType::U4: {
      if (s.size() != 2 && s.size() != 4)
        fail(what, std::string(dtype_name(t)) + " activation must be [N,C,H,W] or [N,C], got " +
                       shape_str(s));
      const int64_t pixels = s.size() == 4 ? s[2] * s[3] : 1;
      const ops::QType q = t == DType::U4 ? ops::QType::U4 : t == DType::S8 ? ops::QType::S8 : ops::QType::U8;
      return pixels * ops::qpixel_bytes(q, s[1]);
    }
    default:
      fail(what, std::string("activations of type ") + dtype_name(t) + " are not supported");
  }
}

}  // namespace fgq::rt
