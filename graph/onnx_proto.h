#pragma once
// Debian's libonnx-dev generated header expects ONNX_API (dllexport/import marker, empty on
// Linux) from onnx_pb.h; define it here so this header works whether or not the build already
// passes -DONNX_API=.
#ifndef ONNX_API
#define ONNX_API
#endif
#include <onnx/onnx-ml.pb.h>
