#include "graph/onnx_tensor.h"

#include <cstring>

#include "graph/error.h"
#include "graph/limits.h"

namespace fgq {
namespace {

std::string dtype_name(int32_t dt) {
  if (onnx::TensorProto_DataType_IsValid(dt))
    return onnx::TensorProto_DataType_Name(static_cast<onnx::TensorProto_DataType>(dt));
  return "unknown (" + std::to_string(dt) + ")";
}

// Copies a little-endian raw_data payload, or the typed repeated field, into `out`, checking
// that the element count matches the declared dims.
template <class T, class Repeated>
void read_payload(const onnx::TensorProto& t, const Repeated& typed, int64_t n,
                  const std::string& where, const std::string& what, std::vector<T>& out) {
  if (t.has_raw_data()) {
    const std::string& raw = t.raw_data();
    // n <= kMaxElements, so n * sizeof(T) cannot overflow.
    if (raw.size() != static_cast<size_t>(n) * sizeof(T))
      fail(where, what + ": raw_data has " + std::to_string(raw.size()) + " bytes, dims need " +
                      std::to_string(n * static_cast<int64_t>(sizeof(T))));
    out.resize(static_cast<size_t>(n));
    if (n) std::memcpy(out.data(), raw.data(), raw.size());
    return;
  }
  if (typed.size() != n)
    fail(where, what + ": has " + std::to_string(typed.size()) + " values, dims need " +
                    std::to_string(n));
  out.assign(typed.begin(), typed.end());
}

}  // namespace

Tensor tensor_from_onnx(const onnx::TensorProto& t, const std::string& where,
                        const std::string& what) {
  if (t.data_location() == onnx::TensorProto::EXTERNAL)
    fail(where, what + " uses external data, which is not supported");
  if (t.has_segment()) fail(where, what + " is segmented, which is not supported");
  Shape shape;
  for (int64_t d : t.dims()) {
    if (d < 0) fail(where, what + " has a negative dimension (" + std::to_string(d) + ")");
    shape.push_back(d);
  }
  if (shape.size() > kMaxRank)
    fail(where, what + " has rank " + std::to_string(shape.size()) + " (at most " +
                    std::to_string(kMaxRank) + " supported)");
  // Checked before anything is allocated: a corrupt file may declare absurd dims.
  const auto n = capped_numel(shape);
  if (!n)
    fail(where, what + " declared size too large " + shape_str(shape) + " (limit " +
                    std::to_string(kMaxElements) + " elements)");

  Tensor out;
  out.shape = shape;
  switch (t.data_type()) {
    case onnx::TensorProto::FLOAT:
      out.dtype = DType::F32;
      read_payload(t, t.float_data(), *n, where, what, out.f);
      break;
    case onnx::TensorProto::INT64:
      out.dtype = DType::I64;
      read_payload(t, t.int64_data(), *n, where, what, out.i);
      break;
    case onnx::TensorProto::UINT8:
    case onnx::TensorProto::INT8:
    case onnx::TensorProto::INT32: {
      const bool t2 = t.doc_string() == kTernaryCodesDoc;
      if (t2 && t.data_type() != onnx::TensorProto::UINT8)
        fail(where, what + ": ternary codes must be stored as UINT8");
      out.dtype = t2 ? DType::T2
                : t.data_type() == onnx::TensorProto::UINT8 ? DType::U8
                : t.data_type() == onnx::TensorProto::INT8  ? DType::S8
                                                            : DType::I32;
      const int64_t bytes = dtype_bytes(out.dtype, *n);
      if (t.has_raw_data()) {
        if (t.raw_data().size() != static_cast<size_t>(bytes))
          fail(where, what + ": raw_data has " + std::to_string(t.raw_data().size()) +
                          " bytes, dims need " + std::to_string(bytes));
        out.raw.assign(t.raw_data().begin(), t.raw_data().end());
      } else {
        // ONNX stores 8-bit and 32-bit integers in int32_data, one element per entry.
        if (t2) fail(where, what + ": ternary codes need raw_data");
        if (t.int32_data_size() != *n)
          fail(where, what + ": has " + std::to_string(t.int32_data_size()) +
                          " values, dims need " + std::to_string(*n));
        const int esize = out.dtype == DType::I32 ? 4 : 1;
        out.raw.resize(static_cast<size_t>(bytes));
        for (int64_t k = 0; k < *n; ++k) {
          const int32_t v = t.int32_data(static_cast<int>(k));
          if (esize == 1 && (out.dtype == DType::U8 ? (v < 0 || v > 255) : (v < -128 || v > 127)))
            fail(where, what + ": value " + std::to_string(v) + " is out of range for " +
                            dtype_name(t.data_type()));
          std::memcpy(out.raw.data() + k * esize, &v, esize);  // little-endian
        }
      }
      break;
    }
    default:
      fail(where, what + " has data type " + dtype_name(t.data_type()) +
                      "; only FLOAT, INT64, UINT8, INT8 and INT32 are supported");
  }
  return out;
}

Attr attr_from_onnx(const onnx::AttributeProto& a, const std::string& where,
                    const std::string& node_desc) {
  Attr r;
  auto type = a.type();
  // Very old exporters leave `type` unset; the populated field tells the kind.
  if (type == onnx::AttributeProto::UNDEFINED) {
    if (a.ints_size()) type = onnx::AttributeProto::INTS;
    else if (a.floats_size()) type = onnx::AttributeProto::FLOATS;
    else if (a.has_s()) type = onnx::AttributeProto::STRING;
    else if (a.has_f()) type = onnx::AttributeProto::FLOAT;
    else if (a.has_i()) type = onnx::AttributeProto::INT;
  }
  switch (type) {
    case onnx::AttributeProto::INT:
      r.kind = Attr::INT;
      r.i = a.i();
      break;
    case onnx::AttributeProto::FLOAT:
      r.kind = Attr::FLOAT;
      r.f = a.f();
      break;
    case onnx::AttributeProto::STRING:
      r.kind = Attr::STRING;
      r.s = a.s();
      break;
    case onnx::AttributeProto::INTS:
      r.kind = Attr::INTS;
      r.ints.assign(a.ints().begin(), a.ints().end());
      break;
    case onnx::AttributeProto::FLOATS:
      r.kind = Attr::FLOATS;
      r.floats.assign(a.floats().begin(), a.floats().end());
      break;
    default:
      fail(where, node_desc + ": attribute '" + a.name() + "' has unsupported type " +
                      onnx::AttributeProto_AttributeType_Name(type));
  }
  return r;
}

}  // namespace fgq
