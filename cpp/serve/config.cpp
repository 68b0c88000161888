// Flags and environment of hermes-serve (see config.hpp).
#include "config.hpp"

#include <thread>

namespace serve {

const char *kUsage =
    "usage: hermes-serve --model PATH [--backend auto|openvino|tensorrt] [--precision f32|bf16]\n"
    "                    [--workers N] [--threads N] [--queue N] [--max-body BYTES] [--max-pixels N]\n"
    "                    [--timeout SECONDS] [--drain SECONDS] [--tile N] [--port N] [--host H]\n"
    "Every flag can also come from the environment: HERMES_MODEL, HERMES_BACKEND, HERMES_PRECISION,\n"
    "HERMES_WORKERS, HERMES_THREADS, HERMES_QUEUE, HERMES_MAX_BODY, HERMES_MAX_PIXELS, HERMES_TIMEOUT,\n"
    "HERMES_DRAIN, HERMES_TILE, HERMES_PORT, HERMES_HOST (a flag wins). Endpoints: POST /v1/restore,\n"
    "GET /healthz, /readyz, /metrics, /v1/model.\n";

namespace {

struct Option {
    const char *flag;
    const char *env;
};

const Option kOptions[] = {{"--model", "HERMES_MODEL"},       {"--backend", "HERMES_BACKEND"},
                           {"--precision", "HERMES_PRECISION"}, {"--workers", "HERMES_WORKERS"},
                           {"--threads", "HERMES_THREADS"},     {"--queue", "HERMES_QUEUE"},
                           {"--max-body", "HERMES_MAX_BODY"},   {"--max-pixels", "HERMES_MAX_PIXELS"},
                           {"--timeout", "HERMES_TIMEOUT"},     {"--drain", "HERMES_DRAIN"},
                           {"--tile", "HERMES_TILE"},           {"--port", "HERMES_PORT"},
                           {"--host", "HERMES_HOST"}};

long long whole(const std::string &name, const std::string &text, long long lo, long long hi) {
    size_t used = 0;
    long long v = 0;
    try {
        v = std::stoll(text, &used);
    } catch (...) {
        used = 0;
    }
    if (used == 0 || used != text.size() || v < lo || v > hi)
        throw UsageError(name + " takes a whole number from " + std::to_string(lo) + " to " + std::to_string(hi) +
                         ", got '" + text + "'");
    return v;
}

double seconds(const std::string &name, const std::string &text) {
    size_t used = 0;
    double v = 0;
    try {
        v = std::stod(text, &used);
    } catch (...) {
        used = 0;
    }
    if (used == 0 || used != text.size() || !(v > 0.0) || v > 86400.0)
        throw UsageError(name + " takes seconds above 0 (e.g. 30 or 0.5), got '" + text + "'");
    return v;
}

void apply(Config &c, const std::string &flag, const std::string &v) {
    if (flag == "--model") c.model = v;
    else if (flag == "--backend") {
        if (v != "auto" && v != "openvino" && v != "tensorrt")
            throw UsageError("--backend takes auto, openvino or tensorrt, got '" + v + "'");
        c.backend = v;
    } else if (flag == "--precision") {
        if (v != "f32" && v != "bf16") throw UsageError("--precision takes f32 or bf16, got '" + v + "'");
        c.precision = v;
    } else if (flag == "--workers") c.workers = static_cast<int>(whole(flag, v, 1, 256));
    else if (flag == "--threads") c.threads = static_cast<int>(whole(flag, v, 0, 1024));
    else if (flag == "--queue") c.queue = static_cast<int>(whole(flag, v, 0, 1000000));
    else if (flag == "--max-body") c.max_body = whole(flag, v, 1, 1LL << 40);
    else if (flag == "--max-pixels") c.max_pixels = whole(flag, v, 1, 1LL << 40);
    else if (flag == "--timeout") c.timeout = seconds(flag, v);
    else if (flag == "--drain") c.drain = seconds(flag, v);
    else if (flag == "--tile") c.tile = static_cast<int>(whole(flag, v, 16, 8192));
    else if (flag == "--port") c.port = static_cast<int>(whole(flag, v, 0, 65535));
    else if (flag == "--host") c.host = v;
}

}  // namespace

Config parse_config(const std::vector<std::string> &args, const char *(*env)(const char *)) {
    Config c;
    for (const Option &o : kOptions)
        if (const char *v = env(o.env); v && *v) {
            try {
                apply(c, o.flag, v);
            } catch (const UsageError &exc) {
                throw UsageError(std::string(o.env) + ": " + exc.what());
            }
        }
    for (size_t i = 0; i < args.size(); ++i) {
        std::string flag = args[i], value;
        const size_t eq = flag.find('=');
        if (flag.rfind("--", 0) == 0 && eq != std::string::npos) {
            value = flag.substr(eq + 1);
            flag = flag.substr(0, eq);
        } else {
            bool known = false;
            for (const Option &o : kOptions) known = known || flag == o.flag;
            if (!known) throw UsageError("unknown argument '" + flag + "'");
            if (i + 1 >= args.size()) throw UsageError(flag + " needs a value");
            value = args[++i];
        }
        bool known = false;
        for (const Option &o : kOptions) known = known || flag == o.flag;
        if (!known) throw UsageError("unknown argument '" + flag + "'");
        apply(c, flag, value);
    }
    if (c.model.empty()) throw UsageError("no model: pass --model model.onnx (or set HERMES_MODEL)");
    if (c.threads == 0) {
        const unsigned cores = std::thread::hardware_concurrency();
        c.threads = std::max(1, static_cast<int>(cores ? cores : 1) / c.workers);
    }
    return c;
}

}  // namespace serve
