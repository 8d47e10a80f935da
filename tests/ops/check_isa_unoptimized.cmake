# ctest script (tests/CMakeLists.txt, test isa_kernels_compile_unoptimized):
#   cmake -DCXX=<compiler> -DSTD=<C++ standard> -DSRC=<source root> -DLIST=<isa_sources.txt>
#         -DOUT=<scratch dir> -P check_isa_unoptimized.cmake
# Compiles each integer-kernel ISA file (*_scalar.cpp, *_avx2.cpp, *_avx512vnni.cpp) with the
# flags the build gives it (LIST: "<source>|<flags>" lines, from fgq_isa_flags) and no
# optimization, as a Debug build does. Without __OPTIMIZE__ some intrinsics are macros whose
# arguments must be constants (_mm_prefetch's hint): code that passes them through an inline
# function compiles in Release and fails in Debug.
if(NOT CXX OR NOT STD OR NOT SRC OR NOT LIST OR NOT OUT)
  message(FATAL_ERROR "usage: cmake -DCXX=<compiler> -DSTD=<standard> -DSRC=<source root> "
                      "-DLIST=<file> -DOUT=<dir> -P ${CMAKE_CURRENT_LIST_FILE}")
endif()
file(STRINGS "${LIST}" lines)
if(NOT lines)
  message(FATAL_ERROR "no ISA kernel sources listed in ${LIST}")
endif()
file(MAKE_DIRECTORY "${OUT}")
foreach(line IN LISTS lines)
  string(FIND "${line}" "|" bar)
  string(SUBSTRING "${line}" 0 ${bar} src)
  math(EXPR rest "${bar} + 1")
  string(SUBSTRING "${line}" ${rest} -1 flags)
  separate_arguments(flags UNIX_COMMAND "${flags}")
  if(NOT flags)
    message(FATAL_ERROR "${src}: no ISA flags in ${LIST}")
  endif()
  execute_process(COMMAND "${CXX}" -std=c++${STD} -O0 ${flags} -I "${SRC}" -c "${src}"
                          -o "${OUT}/unoptimized.o"
                  ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${src} does not compile without optimization (${flags}):\n${err}")
  endif()
  message(STATUS "compiles at -O0 with ${flags}: ${src}")
endforeach()
