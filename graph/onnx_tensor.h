#pragma once
// ONNX protobuf -> fgq IR pieces (tensors, attributes), validated. Used by the importer only;
// kept apart so that onnx_import.cpp reads as the graph-level logic.
#include <string>

#include "graph/onnx_proto.h"

#include "graph/ir.h"

namespace fgq {

// fgq's ternary codes (DType::T2) travel as UINT8 raw_data, four codes per byte, with the
// logical dims and this doc_string.
inline constexpr const char* kTernaryCodesDoc = "fgq.t2";

// FLOAT (raw_data or float_data), INT64 (raw_data or int64_data), UINT8 / INT8 / INT32
// (raw_data or int32_data) and T2 tensors; anything else, negative or oversized dims, and
// payloads whose size does not match the dims are errors.
// `where` prefixes error messages (the file), `what` names the tensor ("initializer 'w'").
Tensor tensor_from_onnx(const onnx::TensorProto& t, const std::string& where,
                        const std::string& what);

// INT, FLOAT, STRING, INTS and FLOATS attributes; others are an error naming the node.
Attr attr_from_onnx(const onnx::AttributeProto& a, const std::string& where,
                    const std::string& node_desc);

}  // namespace fgq
