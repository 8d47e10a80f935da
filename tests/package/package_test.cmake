# cmake -P script run by ctest (see CMakeLists.txt): install, build the example, classify.
function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}\n${err}")
  endif()
  set(out "${out}" PARENT_SCOPE)
endfunction()

set(prefix ${WORK_DIR}/prefix)
file(REMOVE_RECURSE ${WORK_DIR})
run("cmake --install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
# Public headers may include only each other (and system headers): private ones are not
# installed. The example below compiles fgq.h; this also covers headers it does not include.
file(GLOB headers ${prefix}/include/fgq/*.h)
if(NOT EXISTS ${prefix}/include/fgq/fgq.h)
  message(FATAL_ERROR "fgq/fgq.h was not installed")
endif()
foreach(h ${headers})
  file(STRINGS ${h} includes REGEX "^#include \"")
  foreach(inc ${includes})
    string(REGEX REPLACE "^#include \"([^\"]+)\".*" "\\1" path "${inc}")
    if(NOT EXISTS ${prefix}/include/${path})
      message(FATAL_ERROR "${h} includes \"${path}\", which is not installed")
    endif()
  endforeach()
endforeach()
# Nothing but the prefix: the example must not see the source or build tree.
run("configuring the example" ${CMAKE_COMMAND} -S ${EXAMPLE_DIR} -B ${WORK_DIR}/build
    -G ${GENERATOR} -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_BUILD_TYPE=${BUILD_TYPE}
    "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${LINK_FLAGS}"
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
run("building the example" ${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run("writing the model and image" ${MAKE_INPUTS} ${WORK_DIR}/colour.onnx ${WORK_DIR}/red.jpg)
# FP32, then FGQ-quantized with the image itself as the calibration set.
# Top-5, best first: red is class 0 with logits ~(1, 0, 0, 0, 0), softmax e/(e+4) = 0.4046.
set(image ${WORK_DIR}/red.jpg)
set(other "[1-4] 0\\.1[0-9]*\n")  # 0.149 each
foreach(calib "" ${image})
  run("fgq-classify" ${WORK_DIR}/build/fgq-classify ${WORK_DIR}/colour.onnx ${image} ${calib})
  if(NOT out MATCHES "^0 0\\.40[0-9]*\n${other}${other}${other}${other}$")
    message(FATAL_ERROR "unexpected fgq-classify output (calibration: '${calib}'):\n${out}")
  endif()
  message(STATUS "fgq-classify ${calib}:\n${out}")
endforeach()
file(REMOVE_RECURSE ${WORK_DIR})
