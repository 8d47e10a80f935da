// Names of the quantized storage types (ops/qtypes.h), for messages and reports.
#include "ops/qtypes.h"

namespace fgq::ops {

const char* qtype_name(QType t) {
  switch (t) {
    case QType::U8: return "u8";
    case QType::S8: return "s8";
    case QType::U4: return "u4";
    case QType::F32: return "f32";
  }
  return "?";  // not an enumerator (a corrupted value): never dereferenced as one
}

}  // namespace fgq::ops
