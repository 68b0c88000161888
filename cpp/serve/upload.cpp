#include "upload.hpp"

namespace serve {

const char *kNoBody =
    "the request has no body; send the image as the body (curl --data-binary @photo.png URL) or as one form file "
    "field (curl -F file=@photo.png URL)";

namespace {

// httplib leaves 413 in res.status when the body passed --max-body while it was read
UploadError read_failed(const httplib::Response &res, long long max_body, const std::string &otherwise) {
    if (res.status == 413)
        return {413, "body_too_large",
                "the request body is over " + std::to_string(max_body) + " bytes (--max-body); send a smaller image"};
    return {400, "bad_request", otherwise};
}

}  // namespace

UploadError read_upload(const httplib::Request &req, httplib::Response &res, const httplib::ContentReader &reader,
                        std::string &image, long long max_body) {
    if (!req.is_multipart_form_data()) {
        const bool complete = reader([&](const char *data, size_t n) {
            image.append(data, n);
            return true;
        });
        if (!complete) return read_failed(res, max_body, "the request body ended early (the client went away?)");
        if (image.empty()) return {400, "bad_request", kNoBody};
        return {};
    }
    // every part is read to the end; only the first file field is kept
    int files = 0;
    bool in_file = false;
    std::string misplaced;  // a query setting sent as a form field
    const bool complete = reader(
        [&](const httplib::MultipartFormData &part) {
            in_file = !part.filename.empty();
            files += in_file;
            if (!in_file && (part.name == "format" || part.name == "tile")) misplaced = part.name;
            return true;
        },
        [&](const char *data, size_t n) {
            if (in_file && files == 1) image.append(data, n);
            return true;
        });
    if (!complete)
        return read_failed(res, max_body,
                           "the multipart/form-data body is malformed or ended early; send the image as one file "
                           "field (curl -F file=@photo.png URL) or as the body (curl --data-binary @photo.png URL)");
    if (files > 1)
        return {400, "bad_request",
                "the form has " + std::to_string(files) + " file fields; send one file (curl -F file=@photo.png URL)"};
    if (files == 0) {
        std::string detail = "the form has no file field; send the image as one (curl -F file=@photo.png URL)";
        if (!misplaced.empty()) detail += "; give " + misplaced + " in the query (?" + misplaced + "=...), not the form";
        return {400, "bad_request", detail};
    }
    if (image.empty()) return {400, "bad_request", kNoBody};
    return {};
}

}  // namespace serve
