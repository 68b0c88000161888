// hermes-serve's configuration: flags, each also read from the environment (a flag wins).
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace serve {

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct Config {
    std::string model;
    std::string backend = "auto";   // auto | openvino | tensorrt
    std::string precision = "f32";  // f32 | bf16
    int workers = 2;
    int threads = 0;                // per worker; 0 = max(1, cores / workers)
    int queue = 16;
    long long max_body = 64LL << 20;
    long long max_pixels = 16LL << 20;
    double timeout = 60.0;          // seconds a request may wait and run
    double drain = 30.0;            // seconds in-flight requests get after SIGTERM
    int tile = 256;
    int port = 8080;
    std::string host = "127.0.0.1";
};

// argv without the program name; `env` looks a name up (nullptr when unset).
Config parse_config(const std::vector<std::string> &args, const char *(*env)(const char *));

extern const char *kUsage;

}  // namespace serve
