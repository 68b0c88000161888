// SHA-256 for the engine manifest checks: the manifest records the sha256 of the engine,
// its ONNX and its plugin libraries (hashlib in Python), and the library refuses files
// that differ. The digest is OpenSSL's (EVP, libcrypto), not a hand-written one.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

struct evp_md_ctx_st;  // OpenSSL's EVP_MD_CTX, kept out of this header

namespace hermes {

// Incremental hashing: update() any number of times, then hex() once.
class Sha256 {
public:
    Sha256();
    void update(const void *data, size_t size);
    std::string hex();  // lower-case hex digest; the object is spent afterwards

private:
    std::unique_ptr<evp_md_ctx_st, void (*)(evp_md_ctx_st *)> ctx_;
};

std::string sha256_hex(const void *data, size_t size);

// The sha256 of a file, streamed in 1 MiB blocks (as manifest.py's file_sha256 does);
// HERMES_ERR_IO with one line when the file cannot be read.
std::string file_sha256(const std::string &path);

}  // namespace hermes
