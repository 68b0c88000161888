// Internal errors: every failure inside the library is a hermes::Error carrying the C
// status and one line for hermes_last_error() (what went wrong, and the fix).
#pragma once

#include <stdexcept>
#include <string>

#include "hermes/hermes.h"

namespace hermes {

class Error : public std::runtime_error {
public:
    Error(hermes_status status, const std::string &message)
        : std::runtime_error(message), status_(status) {}
    hermes_status status() const noexcept { return status_; }

private:
    hermes_status status_;
};

[[noreturn]] inline void fail(hermes_status status, const std::string &message) {
    throw Error(status, message);
}

}  // namespace hermes
