// The image of a POST /v1/restore: the raw body (curl --data-binary @photo.png) or the
// one file field of a multipart/form-data body (curl -F file=@photo.png, browser forms).
// The whole body is always read, so a keep-alive connection stays in step even when the
// answer is an error.
#pragma once

#include <httplib.h>

#include <string>

namespace serve {

// what went wrong reading the upload; status 0 = nothing
struct UploadError {
    int status = 0;
    std::string kind, detail;
};

// the one line for a request without an image
extern const char *kNoBody;

// Reads the image into `image`; `max_body` is only quoted in the 413 detail.
UploadError read_upload(const httplib::Request &req, httplib::Response &res, const httplib::ContentReader &reader,
                        std::string &image, long long max_body);

}  // namespace serve
