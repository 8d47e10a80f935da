# ctest script (tests/CMakeLists.txt, test isa_objects_no_weak_symbols):
#   cmake -DLIB=<libfgq_ops.a> -DNM=<nm> -P check_isa_objects.cmake
# The integer-kernel ISA files (*_scalar.cpp, *_avx2.cpp, *_avx512vnni.cpp) are each compiled
# for their own -march (fgq_isa_flags in the top-level CMakeLists.txt). A weak definition in
# one of them (an inline function, a template instantiation, a static member of a class
# template: anything emitted as COMDAT) may be the copy the linker keeps for the whole program,
# i.e. AVX-512 code called from the scalar path on a CPU without AVX-512. So their objects must
# define no weak symbols (nm types W, w, V, v, u) - only internal-linkage code and their plain
# entry points.
if(NOT LIB OR NOT NM)
  message(FATAL_ERROR "usage: cmake -DLIB=<static library> -DNM=<nm> -P ${CMAKE_CURRENT_LIST_FILE}")
endif()
execute_process(COMMAND ${NM} -A --defined-only ${LIB}
                OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${NM} -A --defined-only ${LIB} failed (${rc}): ${err}")
endif()
string(REPLACE ";" "\\;" out "${out}")
string(REPLACE "\n" ";" lines "${out}")
set(members "")
set(bad "")
foreach(line IN LISTS lines)
  # <archive>:<member>:<address> <type> <name>
  if(line MATCHES "^.*:([^:/]*_(scalar|avx2|avx512vnni)\\.cpp\\.o):[0-9a-fA-F]* ([A-Za-z?]) (.*)$")
    set(member "${CMAKE_MATCH_1}")
    set(type "${CMAKE_MATCH_3}")
    set(symbol "${CMAKE_MATCH_4}")
    list(APPEND members "${member}")
    if(type MATCHES "^[WwVvu]$")
      list(APPEND bad "  ${member}: ${type} ${symbol}")
    endif()
  endif()
endforeach()
list(REMOVE_DUPLICATES members)
if(NOT members)
  message(FATAL_ERROR "no ISA object files (*_scalar/_avx2/_avx512vnni.cpp.o) with symbols "
                      "found in ${LIB}: the check would be vacuous")
endif()
if(bad)
  string(REPLACE ";" "\n" bad "${bad}")
  message(FATAL_ERROR "ISA object files define weak symbols (make them internal: anonymous "
                      "namespace, no std:: templates or inline functions with external "
                      "linkage):\n${bad}")
endif()
string(REPLACE ";" ", " members "${members}")
message(STATUS "no weak symbols in ${members}")
