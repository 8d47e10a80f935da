#include "graph/onnx_write.h"

#include "graph/error.h"
#include "graph/onnx_tensor.h"

namespace fgq {

void set_tensor(onnx::TensorProto& tp, const std::string& name, const Tensor& t) {
  tp.set_name(name);
  for (int64_t d : t.shape) tp.add_dims(d);
  switch (t.dtype) {
    case DType::F32:
      tp.set_data_type(onnx::TensorProto::FLOAT);
      static_assert(sizeof(float) == 4, "raw_data is little-endian IEEE float32");
      tp.set_raw_data(t.f.data(), t.f.size() * sizeof(float));
      return;
    case DType::I64:
      tp.set_data_type(onnx::TensorProto::INT64);
      for (int64_t v : t.i) tp.add_int64_data(v);
      return;
    case DType::U8: tp.set_data_type(onnx::TensorProto::UINT8); break;
    case DType::S8: tp.set_data_type(onnx::TensorProto::INT8); break;
    case DType::I32: tp.set_data_type(onnx::TensorProto::INT32); break;
    case DType::T2:
      tp.set_data_type(onnx::TensorProto::UINT8);
      tp.set_doc_string(kTernaryCodesDoc);
      break;
    case DType::U4: fail(name, "u4 constants cannot be exported");
  }
  tp.set_raw_data(t.raw.data(), t.raw.size());
}

void set_attr(onnx::AttributeProto& ap, const std::string& name, const Attr& a) {
  ap.set_name(name);
  switch (a.kind) {
    case Attr::INT: ap.set_type(onnx::AttributeProto::INT), ap.set_i(a.i); break;
    case Attr::FLOAT: ap.set_type(onnx::AttributeProto::FLOAT), ap.set_f(a.f); break;
    case Attr::STRING: ap.set_type(onnx::AttributeProto::STRING), ap.set_s(a.s); break;
    case Attr::INTS:
      ap.set_type(onnx::AttributeProto::INTS);
      for (int64_t v : a.ints) ap.add_ints(v);
      break;
    case Attr::FLOATS:
      ap.set_type(onnx::AttributeProto::FLOATS);
      for (float v : a.floats) ap.add_floats(v);
      break;
  }
}

void set_value_info(onnx::ValueInfoProto& vi, const Value& v) {
  vi.set_name(v.name);
  auto* tt = vi.mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto::FLOAT);
  auto* shape = tt->mutable_shape();
  for (size_t k = 0; k < v.shape.size(); ++k) {
    auto* d = shape->add_dim();
    if (k == 0) d->set_dim_param("N");  // the batch
    else d->set_dim_value(v.shape[k]);
  }
}

}  // namespace fgq
