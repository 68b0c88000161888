// SHA-256 (FIPS 180-4), for the engine manifest checks: the manifest records the sha256
// of the engine, its ONNX and its plugin libraries (hashlib in Python), and the library
// refuses files that differ. Written here so libhermes needs no OpenSSL.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace hermes {

// Incremental hashing: update() any number of times, then hex() once.
class Sha256 {
public:
    Sha256();
    void update(const void *data, size_t size);
    std::string hex();  // lower-case hex digest; the object is spent afterwards

private:
    void block(const unsigned char *p);
    uint32_t h_[8];
    unsigned char buf_[64];
    size_t used_ = 0;     // bytes in buf_
    uint64_t total_ = 0;  // bytes hashed so far
};

std::string sha256_hex(const void *data, size_t size);

// The sha256 of a file, streamed in 1 MiB blocks (as manifest.py's file_sha256 does);
// HERMES_ERR_IO with one line when the file cannot be read.
std::string file_sha256(const std::string &path);

}  // namespace hermes
