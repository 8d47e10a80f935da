#pragma once
// Writing a whole file so that readers never see half of it (reports, saved models).
#include <string>

namespace fgq {

// Writes `bytes` to path.tmp.<pid>, then renames it over `path`. Throws fgq::Error naming the
// path ("cannot write (...)") when any step fails; the temporary file is removed then.
void write_file_atomic(const std::string& path, const std::string& bytes);

}  // namespace fgq
