// Which backends this build carries (hermes_backends()).
#include "backend.hpp"

namespace hermes {

const char *built_backends() {
#if defined(HERMES_HAVE_TENSORRT)
    return "openvino,tensorrt";
#else
    return "openvino";
#endif
}

}  // namespace hermes
