# ctest script (tests/CMakeLists.txt, test isa_kernels_compile_unoptimized):
#   cmake -DCXX=<compiler> -DSRC=<source root> -DOUT=<scratch dir> -P check_isa_unoptimized.cmake
# Compiles each integer-kernel ISA file (*_scalar.cpp, *_avx2.cpp, *_avx512vnni.cpp under ops/)
# with its own -march and no optimization, as a Debug build does. Without __OPTIMIZE__ some
# intrinsics are macros whose arguments must be constants (_mm_prefetch's hint): code that
# passes them through an inline function compiles in Release and fails in Debug.
if(NOT CXX OR NOT SRC OR NOT OUT)
  message(FATAL_ERROR "usage: cmake -DCXX=<compiler> -DSRC=<source root> -DOUT=<dir> -P ${CMAKE_CURRENT_LIST_FILE}")
endif()
file(GLOB_RECURSE srcs "${SRC}/ops/*_scalar.cpp" "${SRC}/ops/*_avx2.cpp" "${SRC}/ops/*_avx512vnni.cpp")
if(NOT srcs)
  message(FATAL_ERROR "no ISA kernel sources under ${SRC}/ops")
endif()
file(MAKE_DIRECTORY "${OUT}")
foreach(src IN LISTS srcs)
  if(src MATCHES "_scalar\\.cpp$")
    set(flags -march=x86-64)
  elseif(src MATCHES "_avx2\\.cpp$")
    set(flags -march=x86-64-v3)
  else()
    set(flags -march=x86-64-v4 -mavx512vnni)
  endif()
  execute_process(COMMAND "${CXX}" -std=c++17 -O0 ${flags} -ffp-contract=off -I "${SRC}" -c "${src}"
                          -o "${OUT}/unoptimized.o"
                  ERROR_VARIABLE err RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${src} does not compile without optimization (${flags}):\n${err}")
  endif()
  message(STATUS "compiles at -O0: ${src}")
endforeach()
