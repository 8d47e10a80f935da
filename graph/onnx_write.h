#pragma once
// Graph pieces -> ONNX protobuf, shared by the exporters (onnx_export.h, onnx_export_qdq.h).
#include <string>

#include "graph/ir.h"
#include "graph/onnx_proto.h"

namespace fgq {

// A constant as an initializer (raw_data; T2 codes as UINT8 with the kTernaryCodesDoc marker).
void set_tensor(onnx::TensorProto& tp, const std::string& name, const Tensor& t);
void set_attr(onnx::AttributeProto& ap, const std::string& name, const Attr& a);
// A float graph input/output with a symbolic batch dimension.
void set_value_info(onnx::ValueInfoProto& vi, const Value& v);

}  // namespace fgq
