// SHA-256 through OpenSSL's EVP interface (libcrypto): see sha256.hpp.
#include "sha256.hpp"

#include <openssl/evp.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "error.hpp"

namespace hermes {

namespace {

[[noreturn]] void digest_failed(const char *step) {
    fail(HERMES_ERR_INTERNAL, std::string("OpenSSL SHA-256 failed in ") + step);
}

}  // namespace

Sha256::Sha256() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
    if (!ctx_) fail(HERMES_ERR_OUT_OF_MEMORY, "cannot allocate an OpenSSL digest context");
    if (EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1) digest_failed("EVP_DigestInit_ex");
}

void Sha256::update(const void *data, size_t size) {
    if (size != 0 && EVP_DigestUpdate(ctx_.get(), data, size) != 1) digest_failed("EVP_DigestUpdate");
}

std::string Sha256::hex() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_DigestFinal_ex(ctx_.get(), digest, &length) != 1) digest_failed("EVP_DigestFinal_ex");
    static const char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * length);
    for (unsigned int i = 0; i < length; ++i) {
        out += digits[digest[i] >> 4];
        out += digits[digest[i] & 0xf];
    }
    return out;
}

std::string sha256_hex(const void *data, size_t size) {
    Sha256 s;
    s.update(data, size);
    return s.hex();
}

std::string file_sha256(const std::string &path) {
    std::unique_ptr<FILE, int (*)(FILE *)> file(std::fopen(path.c_str(), "rb"), std::fclose);
    if (!file) fail(HERMES_ERR_IO, "cannot read '" + path + "' to hash it (" + std::strerror(errno) + ")");
    std::vector<unsigned char> block(size_t(1) << 20);
    Sha256 s;
    for (;;) {
        const size_t got = std::fread(block.data(), 1, block.size(), file.get());
        s.update(block.data(), got);
        if (got < block.size()) break;
    }
    if (std::ferror(file.get()))
        fail(HERMES_ERR_IO, "reading '" + path + "' failed while hashing it (" + std::strerror(errno) + ")");
    return s.hex();
}

}  // namespace hermes
