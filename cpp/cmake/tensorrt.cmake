# The TensorRT backend of libhermes (src/tensorrt_backend.cpp); included by
# CMakeLists.txt once the target `hermes` exists.
#
#   HERMES_WITH_TENSORRT  AUTO (default): build it in where TensorRT and CUDA are found;
#                         ON: fail when they are not; OFF: never.
#   TensorRT_ROOT         folder with include/NvInfer.h and lib/libnvinfer (also read
#                         from the environment); or TensorRT_INCLUDE_DIR / TensorRT_LIBRARY.
#   CUDAToolkit_ROOT      where find_package(CUDAToolkit) should look, if not on PATH.
#
# Found: tensorrt_backend.cpp goes into `hermes` (HERMES_HAVE_TENSORRT=1), linked to
# libnvinfer and cudart. Otherwise `hermes` gets tensorrt_missing.cpp, whose
# open_tensorrt() says how to rebuild. With TensorRT's headers and CUDA but no
# libnvinfer (a headers-only checkout), tensorrt_backend.cpp is still compiled, as the
# OBJECT library hermes_tensorrt_check, so the backend keeps compiling warning-free.
# Sets HERMES_TENSORRT_STATUS (one line) for the configure summary.

if(NOT DEFINED HERMES_WITH_TENSORRT)
  set(HERMES_WITH_TENSORRT AUTO CACHE STRING "TensorRT backend: AUTO, ON or OFF")
  set_property(CACHE HERMES_WITH_TENSORRT PROPERTY STRINGS AUTO ON OFF)
endif()
string(TOUPPER "${HERMES_WITH_TENSORRT}" _hermes_trt_mode)
if(NOT _hermes_trt_mode STREQUAL "AUTO")
  if(HERMES_WITH_TENSORRT)  # any CMake truth value: YES, 1, TRUE ...
    set(_hermes_trt_mode ON)
  else()
    set(_hermes_trt_mode OFF)
  endif()
endif()
set(_hermes_trt_src "${CMAKE_CURRENT_LIST_DIR}/../src")

if(_hermes_trt_mode STREQUAL "OFF")
  target_sources(hermes PRIVATE "${_hermes_trt_src}/tensorrt_missing.cpp")
  set(HERMES_TENSORRT_STATUS "TensorRT backend: off (HERMES_WITH_TENSORRT=OFF)")
  message(STATUS "${HERMES_TENSORRT_STATUS}")
  return()
endif()

set(TensorRT_ROOT "$ENV{TensorRT_ROOT}" CACHE PATH "TensorRT folder (include/NvInfer.h, lib/libnvinfer)")
find_path(TensorRT_INCLUDE_DIR NvInfer.h
  HINTS "${TensorRT_ROOT}" ENV TensorRT_ROOT ENV TensorRT_INCLUDE_DIR
  PATH_SUFFIXES include include/x86_64-linux-gnu include/aarch64-linux-gnu)
find_library(TensorRT_LIBRARY NAMES nvinfer nvinfer_11 nvinfer_10
  HINTS "${TensorRT_ROOT}" ENV TensorRT_ROOT
  PATH_SUFFIXES lib lib64 lib/x86_64-linux-gnu lib/aarch64-linux-gnu)
find_package(CUDAToolkit QUIET)

# the version, for the status line (TensorRT 10 spells NV_TENSORRT_MAJOR, 11 TRT_MAJOR_ENTERPRISE)
set(_hermes_trt_version "")
if(TensorRT_INCLUDE_DIR AND EXISTS "${TensorRT_INCLUDE_DIR}/NvInferVersion.h")
  file(READ "${TensorRT_INCLUDE_DIR}/NvInferVersion.h" _hermes_trt_header)
  foreach(_part MAJOR MINOR PATCH)
    if(_hermes_trt_header MATCHES "#define (NV_TENSORRT_${_part}|TRT_${_part}_ENTERPRISE) +([0-9]+)")
      string(APPEND _hermes_trt_version "${CMAKE_MATCH_2}.")
    endif()
  endforeach()
  string(REGEX REPLACE "\\.$" "" _hermes_trt_version "${_hermes_trt_version}")
endif()

set(_hermes_trt_missing "")
if(NOT TensorRT_INCLUDE_DIR)
  list(APPEND _hermes_trt_missing "NvInfer.h not found (set TensorRT_ROOT or TensorRT_INCLUDE_DIR)")
endif()
if(NOT TensorRT_LIBRARY)
  list(APPEND _hermes_trt_missing "libnvinfer not found (set TensorRT_ROOT or TensorRT_LIBRARY)")
endif()
if(NOT CUDAToolkit_FOUND)
  list(APPEND _hermes_trt_missing "the CUDA toolkit not found (set CUDAToolkit_ROOT)")
endif()
list(JOIN _hermes_trt_missing "; " _hermes_trt_why)

if(NOT _hermes_trt_missing)
  if(NOT TARGET TensorRT::nvinfer)
    add_library(TensorRT::nvinfer UNKNOWN IMPORTED)
    set_target_properties(TensorRT::nvinfer PROPERTIES
      IMPORTED_LOCATION "${TensorRT_LIBRARY}" INTERFACE_INCLUDE_DIRECTORIES "${TensorRT_INCLUDE_DIR}")
  endif()
  target_sources(hermes PRIVATE "${_hermes_trt_src}/tensorrt_backend.cpp")
  # imported targets: their headers are SYSTEM, so their warnings stay out of ours
  target_link_libraries(hermes PRIVATE TensorRT::nvinfer CUDA::cudart ${CMAKE_DL_LIBS})  # dlopen: plugin libraries
  target_compile_definitions(hermes PRIVATE HERMES_HAVE_TENSORRT=1)
  # an installed libhermes finds libnvinfer and cudart where they were found here
  get_filename_component(_hermes_trt_libdir "${TensorRT_LIBRARY}" DIRECTORY)
  set_property(TARGET hermes APPEND PROPERTY INSTALL_RPATH "${_hermes_trt_libdir}" "${CUDAToolkit_LIBRARY_DIR}")
  set(HERMES_TENSORRT_STATUS
    "TensorRT backend: on (TensorRT ${_hermes_trt_version} at ${_hermes_trt_libdir}, CUDA ${CUDAToolkit_VERSION})")
elseif(_hermes_trt_mode STREQUAL "ON")
  message(FATAL_ERROR "HERMES_WITH_TENSORRT=ON but ${_hermes_trt_why}")
elseif(TensorRT_INCLUDE_DIR AND CUDAToolkit_FOUND)
  add_library(hermes_tensorrt_check OBJECT "${_hermes_trt_src}/tensorrt_backend.cpp")
  set_target_properties(hermes_tensorrt_check PROPERTIES EXCLUDE_FROM_ALL OFF)
  target_include_directories(hermes_tensorrt_check PRIVATE "${_hermes_trt_src}" "${CMAKE_CURRENT_LIST_DIR}/../include")
  target_include_directories(hermes_tensorrt_check SYSTEM PRIVATE "${TensorRT_INCLUDE_DIR}" ${CUDAToolkit_INCLUDE_DIRS})
  target_link_libraries(hermes_tensorrt_check PRIVATE nlohmann_json::nlohmann_json)
  target_compile_options(hermes_tensorrt_check PRIVATE ${HERMES_WARNINGS})
  target_sources(hermes PRIVATE "${_hermes_trt_src}/tensorrt_missing.cpp")
  set(HERMES_TENSORRT_STATUS "TensorRT backend: compile check only (TensorRT ${_hermes_trt_version} headers at \
${TensorRT_INCLUDE_DIR}, ${_hermes_trt_why}; libhermes runs no engines)")
else()
  target_sources(hermes PRIVATE "${_hermes_trt_src}/tensorrt_missing.cpp")
  set(HERMES_TENSORRT_STATUS "TensorRT backend: skipped (${_hermes_trt_why})")
endif()
message(STATUS "${HERMES_TENSORRT_STATUS}")
