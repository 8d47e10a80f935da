#pragma once
// Public. One exception type for every user-facing failure: the message is a single line that names
// the file (or object) and the problem, e.g. "models/x.onnx: unsupported op 'LSTM' (node 'lstm_1')".
#include <stdexcept>
#include <string>

namespace fgq {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void fail(const std::string& where, const std::string& what) {
  throw Error(where.empty() ? what : where + ": " + what);
}

}  // namespace fgq
