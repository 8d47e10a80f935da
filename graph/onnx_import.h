#pragma once
// ONNX ModelProto -> Graph. Validates everything it reads: a bad file gives one fgq::Error
// line naming the file and the problem (truncated, unsupported op, bad dims, ...).
#include <string>

#include "graph/ir.h"

namespace fgq {

Graph import_onnx_file(const std::string& path);
// `name` is used in error messages in place of a file name.
Graph import_onnx_bytes(const void* data, size_t size, const std::string& name);

// Ops the importer accepts (everything else is rejected by name).
bool is_supported_op(const std::string& op_type);

}  // namespace fgq
