# Installs the OpenVINO libraries libhermes needs at run time into
# ${CMAKE_INSTALL_LIBDIR}/${HERMES_OPENVINO_SUBDIR}, taken from the wheel's folder
# (HERMES_OPENVINO_LIBDIR): the libraries OpenVINO opens by name at run time - the CPU
# plugin, the ONNX frontend, TBB's NUMA binding (with hwloc) and its allocator - and
# everything libhermes and those link against that lives in that folder (the runtime,
# TBB). Found at install time with file(GET_RUNTIME_DEPENDENCIES), so a newer wheel that
# links another library brings it along. The wheel's libraries find each other through
# their own RPATH $ORIGIN, so one folder is enough.
set(_ov_dir "${HERMES_OPENVINO_LIBDIR}")
set(_ov_modules)
foreach(_pattern libopenvino_intel_cpu_plugin.so libopenvino_onnx_frontend.so* libtbbbind_2_5.so* libtbbmalloc.so*)
  file(GLOB _found "${_ov_dir}/${_pattern}")
  list(APPEND _ov_modules ${_found})
endforeach()
foreach(_needed libopenvino_intel_cpu_plugin.so libopenvino_onnx_frontend.so)
  if(NOT _ov_modules MATCHES "${_needed}")
    message(FATAL_ERROR "OpenVINO's ${_needed} is not in ${_ov_dir}; reinstall the wheel "
                        "(pip install --force-reinstall openvino) or configure with -DHERMES_INSTALL_OPENVINO=OFF")
  endif()
endforeach()
string(REPLACE ";" "\" \"" _ov_modules_quoted "${_ov_modules}")
install(CODE "
  file(GET_RUNTIME_DEPENDENCIES
    LIBRARIES \"$<TARGET_FILE:hermes>\"
    MODULES \"${_ov_modules_quoted}\"
    DIRECTORIES \"${_ov_dir}\"
    RESOLVED_DEPENDENCIES_VAR _ov_resolved
    UNRESOLVED_DEPENDENCIES_VAR _ov_unresolved
    POST_INCLUDE_REGEXES \"^${_ov_dir}/\"
    POST_EXCLUDE_REGEXES \".*\")
  file(INSTALL \"${_ov_modules_quoted}\" \${_ov_resolved}
       DESTINATION \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/${HERMES_OPENVINO_SUBDIR}\"
       FOLLOW_SYMLINK_CHAIN)
")
