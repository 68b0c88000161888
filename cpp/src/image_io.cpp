// libvips file streaming (see image_io.hpp).
#include "image_io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <optional>
#include <vips/vips8>

#include "error.hpp"
#include "samples.hpp"

namespace hermes {

namespace {

const char *kConverted[] = {"cmyk", "lab", "labs", "labq", "lch", "cmc", "xyz", "yxy", "scrgb", "hsv"};

std::string base_name(const std::string &path) {
    const size_t slash = path.find_last_of('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string lower_suffix(const std::string &path) {
    const std::string name = base_name(path);
    const size_t dot = name.find_last_of('.');
    std::string s = dot == std::string::npos ? "" : name.substr(dot);
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s == ".jpeg" ? ".jpg" : (s == ".tiff" ? ".tif" : s);
}

// libvips' last warning on this thread: its loaders often say why only there
thread_local std::string last_warning;

// libvips' reason, without its generic first lines, on one line
std::string vips_reason(const vips::VError &exc) {
    std::string text = exc.what();
    vips_error_clear();
    if (!last_warning.empty()) text += "\n" + last_warning;
    last_warning.clear();
    std::string out;
    size_t start = 0;
    while (start < text.size()) {
        size_t end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        std::string line = text.substr(start, end - start);
        start = end + 1;
        if (line.empty() || line.rfind("unable to", 0) == 0) continue;
        if (!out.empty()) out += " ";
        out += line;
        if (out.size() > 200) break;
    }
    return out.empty() ? "libvips error" : out.substr(0, 200);
}

bool is_converted(const vips::VImage &image) {
    const char *name = vips_enum_nick(VIPS_TYPE_INTERPRETATION, image.interpretation());
    for (const char *c : kConverted)
        if (name && std::strcmp(name, c) == 0) return true;
    return false;
}

}  // namespace

void init_vips() {
    static std::once_flag once;
    std::call_once(once, [] {
        if (VIPS_INIT("hermes")) fail(HERMES_ERR_INTERNAL, "libvips failed to start; check its installation");
        // streaming reads each row once: the operation cache would only hold decoded pixels
        vips_cache_set_max(0);
        // libvips' own warnings (e.g. "invalid chunk type") would go to the host's stderr;
        // failures reach the caller as one-line errors instead
        g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING,
                          [](const gchar *, GLogLevelFlags, const gchar *message, gpointer) {
                              if (message) last_warning = message;
                          },
                          nullptr);
    });
}

std::vector<uint8_t> resize_memory(const void *data, int width, int height, int bands,
                                   int bytes_per_sample, double factor, int *out_w, int *out_h) {
    init_vips();
    try {
        const VipsBandFormat fmt = bytes_per_sample == 4   ? VIPS_FORMAT_FLOAT
                                   : bytes_per_sample == 2 ? VIPS_FORMAT_USHORT
                                                           : VIPS_FORMAT_UCHAR;
        const size_t size = static_cast<size_t>(width) * height * bands * bytes_per_sample;
        vips::VImage image = vips::VImage::new_from_memory(const_cast<void *>(data), size, width, height, bands, fmt);
        vips::VImage out = image.resize(factor, vips::VImage::option()->set("kernel", VIPS_KERNEL_CUBIC));
        size_t n = 0;
        void *buf = out.write_to_memory(&n);
        std::vector<uint8_t> result(static_cast<uint8_t *>(buf), static_cast<uint8_t *>(buf) + n);
        g_free(buf);
        *out_w = out.width();
        *out_h = out.height();
        return result;
    } catch (const vips::VError &exc) {
        fail(HERMES_ERR_IMAGE, "resizing failed (" + vips_reason(exc) + ")");
    }
}

// ------------------------------------------------------------------------ FileSource

struct FileSource::Impl {
    std::string path, name;
    const void *buffer = nullptr;  // an encoded image in memory instead of a file
    size_t buffer_size = 0;
    bool rotate = false;
    std::optional<std::vector<uint8_t>> icc;
    vips::VImage image;                  // colour bands, sequential
    std::optional<vips::VImage> region_owner;
    VipsRegion *region = nullptr;
    int width = 0, height = 0, colour = 3, depth = 8;
    bool alpha = false;
    int next_row = 0;
    std::vector<uint8_t> raw;

    ~Impl() {
        if (region) g_object_unref(region);
    }

    vips::VImage load(bool random = false) const {
        auto opts = vips::VImage::option()->set("fail_on", VIPS_FAIL_ON_TRUNCATED)->set(
            "access", rotate || random ? VIPS_ACCESS_RANDOM : VIPS_ACCESS_SEQUENTIAL);
        vips::VImage im = buffer ? vips::VImage::new_from_buffer(buffer, buffer_size, "", opts)
                                 : vips::VImage::new_from_file(path.c_str(), opts);
        return rotate ? im.autorot() : im;
    }

    // (colour image, alpha image or nothing), as ImageSource._normalize
    std::pair<vips::VImage, std::optional<vips::VImage>> open() const {
        vips::VImage im = load();
        if (is_converted(im)) im = im.colourspace(VIPS_INTERPRETATION_sRGB);
        const VipsBandFormat f = im.format();
        if (f != VIPS_FORMAT_UCHAR && f != VIPS_FORMAT_USHORT) {
            if (f == VIPS_FORMAT_CHAR) im = im.cast(VIPS_FORMAT_UCHAR);
            else if (f == VIPS_FORMAT_SHORT) im = im.cast(VIPS_FORMAT_USHORT);
            else fail(HERMES_ERR_IMAGE, name + ": " + vips_enum_nick(VIPS_TYPE_BAND_FORMAT, f) +
                                            " samples are not supported; save it as an 8- or 16-bit image");
        }
        std::optional<vips::VImage> a;
        if (im.bands() == 2 || im.bands() == 4) {
            a = im.extract_band(im.bands() - 1);
            im = im.extract_band(0, vips::VImage::option()->set("n", im.bands() - 1));
        }
        if (im.bands() != 1 && im.bands() != 3)
            fail(HERMES_ERR_IMAGE, name + ": " + std::to_string(im.bands()) +
                                       " channels are not supported; save it as grey, RGB or RGBA");
        return {im, a};
    }
};

namespace {

// PNG, JPEG, TIFF and WebP, as the Python runtime promises; libvips would read more
const char *kLoaders[] = {"png", "jpeg", "tiff", "webp"};
const char *kSupported = "supported: PNG, JPEG, TIFF, WebP";

void check_loader(const char *loader, const std::string &name) {
    if (!loader) fail(HERMES_ERR_FORMAT, name + ": not an image format libhermes reads; " + std::string(kSupported));
    std::string l = loader;
    std::transform(l.begin(), l.end(), l.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    for (const char *ok : kLoaders)
        if (l.find(ok) != std::string::npos) return;
    std::string kind = l;
    for (const char *strip : {"vipsforeignload", "load", "_buffer", "buffer", "file", "_source", "source"}) {
        const size_t at = kind.find(strip);
        if (at != std::string::npos) kind.erase(at, std::strlen(strip));
    }
    std::transform(kind.begin(), kind.end(), kind.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    if (kind == "NSGIF") kind = "GIF";  // libvips' GIF loader is called nsgif
    fail(HERMES_ERR_FORMAT, name + ": " + (kind.empty() ? std::string("this") : kind) + " images are not supported; " +
                                kSupported);
}

}  // namespace

FileSource::FileSource(const std::string &path, long long max_pixels) : impl_(new Impl) {
    init_vips();
    Impl &m = *impl_;
    m.path = path;
    m.name = base_name(path);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) fail(HERMES_ERR_IO, m.name + ": no such file");
    if (st.st_size == 0) fail(HERMES_ERR_IMAGE, m.name + ": empty file (0 bytes); re-export or re-download it");
    const char *loader = vips_foreign_find_load(path.c_str());
    vips_error_clear();
    check_loader(loader, m.name);
    open_header(max_pixels);
}

FileSource::FileSource(const void *data, size_t size, const std::string &name, long long max_pixels)
    : impl_(new Impl) {
    init_vips();
    Impl &m = *impl_;
    m.name = name;
    m.buffer = data;
    m.buffer_size = size;
    if (!data || size == 0) fail(HERMES_ERR_IMAGE, name + ": empty (0 bytes); send an image");
    const char *loader = vips_foreign_find_load_buffer(data, size);
    vips_error_clear();
    check_loader(loader, m.name);
    open_header(max_pixels);
}

void FileSource::open_header(long long max_pixels) {
    Impl &m = *impl_;
    last_warning.clear();  // only this image's warnings may explain its failure
    try {
        vips::VImage header = m.load();
        // libvips reads the first frame of an animation or multi-page file without a word:
        // refuse it rather than drop the rest (as the Python runtime does)
        const int pages = header.get_typeof("n-pages") != 0 ? header.get_int("n-pages") : 1;
        if (pages > 1)
            fail(HERMES_ERR_FORMAT, m.name + ": holds " + std::to_string(pages) +
                                        " frames or pages (an animation or a multi-page file); only single images "
                                        "are restored; split it into one file per frame or page first");
        const long long pixels = static_cast<long long>(header.width()) * header.height();
        if (max_pixels > 0 && pixels > max_pixels)
            fail(HERMES_ERR_TOO_LARGE, m.name + ": " + std::to_string(header.width()) + "x" + std::to_string(header.height()) +
                                           " is " + std::to_string(pixels) + " pixels, over the pixel limit of " +
                                           std::to_string(max_pixels) + "; raise max_pixels if the image is trusted");
        if (header.get_typeof("icc-profile-data") != 0 && !is_converted(header)) {
            size_t n = 0;
            const void *blob = header.get_blob("icc-profile-data", &n);
            m.icc = std::vector<uint8_t>(static_cast<const uint8_t *>(blob), static_cast<const uint8_t *>(blob) + n);
        }
        const int orientation = header.get_typeof("orientation") != 0 ? header.get_int("orientation") : 1;
        m.rotate = orientation != 0 && orientation != 1;
        auto opened = m.open();
        m.image = opened.first;
        m.alpha = opened.second.has_value();
    } catch (const vips::VError &exc) {
        fail(HERMES_ERR_IMAGE, m.name + ": not a readable image (" + vips_reason(exc) + "); " + kSupported);
    }
    m.width = m.image.width();
    m.height = m.image.height();
    m.colour = m.image.bands();
    m.depth = m.image.format() == VIPS_FORMAT_USHORT ? 16 : 8;
}

FileSource::~FileSource() = default;
int FileSource::width() const { return impl_->width; }
int FileSource::height() const { return impl_->height; }
int FileSource::colour() const { return impl_->colour; }
bool FileSource::alpha() const { return impl_->alpha; }
int FileSource::depth() const { return impl_->depth; }

void FileSource::read_rows(int y0, int y1, float *dst) {
    Impl &m = *impl_;
    if (y0 != m.next_row) fail(HERMES_ERR_INTERNAL, "rows must be read in order");
    // one region, fetched top to bottom: a sequential loader cannot go back
    if (!m.region) m.region = vips_region_new(m.image.get_image());
    VipsRect rect{0, y0, m.width, y1 - y0};
    if (vips_region_prepare(m.region, &rect) != 0) {
        std::string reason = vips_error_buffer();
        vips_error_clear();
        const size_t nl = reason.find('\n');
        fail(HERMES_ERR_IMAGE, m.name + ": decoding failed at row " + std::to_string(y0) + " (" +
                                   reason.substr(0, std::min<size_t>(nl, 200)) + "); the file is truncated or corrupt");
    }
    const size_t row_floats = static_cast<size_t>(m.width) * 3;
    for (int y = y0; y < y1; ++y) {
        const VipsPel *p = VIPS_REGION_ADDR(m.region, 0, y);
        float *q = dst + static_cast<size_t>(y - y0) * row_floats;
        if (m.depth == 16) row_to_float(reinterpret_cast<const uint16_t *>(p), m.width, m.colour, m.colour, q);
        else row_to_float(reinterpret_cast<const uint8_t *>(p), m.width, m.colour, m.colour, q);
    }
    m.next_row = y1;
}

std::vector<float> FileSource::context_image(int max_side, int *h, int *w) {
    Impl &m = *impl_;
    try {
        vips::VImage image = m.open().first;
        const int long_side = std::max(image.width(), image.height());
        if (max_side > 0 && long_side > max_side)
            image = image.resize(static_cast<double>(max_side) / long_side,
                                 vips::VImage::option()->set("kernel", VIPS_KERNEL_CUBIC));
        size_t n = 0;
        void *buf = image.write_to_memory(&n);
        *h = image.height();
        *w = image.width();
        const size_t plane = static_cast<size_t>(*h) * *w;
        std::vector<float> rgb(plane * 3), out(plane * 3);
        for (int y = 0; y < *h; ++y) {
            float *q = rgb.data() + static_cast<size_t>(y) * *w * 3;
            if (m.depth == 16) row_to_float(static_cast<const uint16_t *>(buf) + static_cast<size_t>(y) * *w * m.colour, *w, m.colour, m.colour, q);
            else row_to_float(static_cast<const uint8_t *>(buf) + static_cast<size_t>(y) * *w * m.colour, *w, m.colour, m.colour, q);
        }
        g_free(buf);
        for (size_t i = 0; i < plane; ++i)
            for (int c = 0; c < 3; ++c) out[static_cast<size_t>(c) * plane + i] = rgb[i * 3 + static_cast<size_t>(c)];
        return out;
    } catch (const vips::VError &exc) {
        fail(HERMES_ERR_IMAGE, m.name + ": decoding failed (" + vips_reason(exc) + "); the file is truncated or corrupt");
    }
}

// ------------------------------------------------------------------------ FileSink

struct FileSink::Impl {
    std::string path, name, suffix, folder, stem;
    int width = 0, height = 0, colour = 3, depth = 8;
    std::optional<std::vector<uint8_t>> icc;
    std::optional<vips::VImage> alpha;
    std::string tmp_raw, tmp_out;
    FILE *raw = nullptr;
    long long rows_written = 0;
    std::vector<uint8_t> row;
    bool to_memory = false;           // rows and the result stay in memory
    std::vector<uint8_t> pixels, encoded;

    void cleanup() {
        if (raw) std::fclose(raw);
        raw = nullptr;
        if (!tmp_raw.empty()) ::unlink(tmp_raw.c_str());
        if (!tmp_out.empty()) ::unlink(tmp_out.c_str());
        tmp_raw.clear();
        tmp_out.clear();
    }

    [[noreturn]] void io_fail(int err) {
        cleanup();
        if (err == ENOSPC) fail(HERMES_ERR_IO, name + ": disk full while writing; free space or choose another output folder");
        if (err == EACCES || err == EPERM || err == EROFS)
            fail(HERMES_ERR_IO, "cannot write to '" + folder + "' (permission denied); choose a writable output folder");
        fail(HERMES_ERR_IO, name + ": cannot write (" + std::strerror(err) + "); check the output folder");
    }

    std::string temp(const std::string &tail) {
        std::string tmpl = folder + "/." + stem + ".XXXXXX" + tail;
        std::vector<char> buf(tmpl.begin(), tmpl.end());
        buf.push_back('\0');
        const int fd = ::mkstemps(buf.data(), static_cast<int>(tail.size()));
        if (fd < 0) io_fail(errno);
        ::close(fd);
        return std::string(buf.data());
    }
};

FileSink::FileSink(const std::string &path, int width, int height, FileSource &source, int scale)
    : impl_(new Impl) {
    Impl &m = *impl_;
    m.path = path;
    m.name = base_name(path);
    m.suffix = lower_suffix(path);
    const size_t slash = path.find_last_of('/');
    m.folder = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    const size_t dot = m.name.find_last_of('.');
    m.stem = dot == std::string::npos ? m.name : m.name.substr(0, dot);
    setup(width, height, source, scale);
}

FileSink::FileSink(Memory, const std::string &format, int width, int height, FileSource &source, int scale)
    : impl_(new Impl) {
    Impl &m = *impl_;
    m.to_memory = true;
    m.suffix = lower_suffix("x." + format);
    m.name = "the " + (format.empty() ? std::string("requested") : format) + " output";
    setup(width, height, source, scale);
    m.pixels.reserve(static_cast<size_t>(width) * height * m.colour * (m.depth == 16 ? 2 : 1));
}

void FileSink::setup(int width, int height, FileSource &source, int scale) {
    Impl &m = *impl_;
    if (m.suffix != ".png" && m.suffix != ".jpg" && m.suffix != ".webp" && m.suffix != ".tif")
        fail(HERMES_ERR_FORMAT, m.name + ": unknown output format '" + m.suffix +
                                    "'; use png, jpg, webp or tif");
    const long long limit = m.suffix == ".jpg" ? 65535 : (m.suffix == ".webp" ? 16383 : 2147483647LL);
    if (std::max(width, height) > limit)
        fail(HERMES_ERR_TOO_LARGE, m.name + ": " + std::to_string(width) + "x" + std::to_string(height) +
                                       " is too large for " + m.suffix.substr(1) + " (at most " +
                                       std::to_string(limit) + " pixels a side); write png or tif");
    m.width = width;
    m.height = height;
    m.colour = source.colour();
    m.depth = (m.suffix == ".jpg" || m.suffix == ".webp") ? 8 : source.depth();
    m.icc = source.impl().icc;
    if (source.alpha()) {
        try {
            vips::VImage a = *source.impl().open().second;  // its own pipeline
            if (scale != 1) a = a.resize(scale, vips::VImage::option()->set("kernel", VIPS_KERNEL_CUBIC));
            m.alpha = a;
        } catch (const vips::VError &exc) {
            fail(HERMES_ERR_IMAGE, source.impl().name + ": decoding failed (" + vips_reason(exc) + ")");
        }
    }
    m.row.resize(static_cast<size_t>(width) * m.colour * (m.depth == 16 ? 2 : 1));
}

std::vector<uint8_t> FileSink::take() { return std::move(impl_->encoded); }

FileSink::~FileSink() { impl_->cleanup(); }

void FileSink::write(const float *rows, int n) {
    Impl &m = *impl_;
    if (m.to_memory) {
        for (int r = 0; r < n; ++r) {
            const float *src = rows + static_cast<size_t>(r) * m.width * 3;
            if (m.depth == 16) row_from_float(src, m.width, m.colour, m.colour, reinterpret_cast<uint16_t *>(m.row.data()));
            else row_from_float(src, m.width, m.colour, m.colour, m.row.data());
            m.pixels.insert(m.pixels.end(), m.row.begin(), m.row.end());
        }
        m.rows_written += n;
        return;
    }
    if (!m.raw) {
        struct stat st {};
        if (::stat(m.folder.c_str(), &st) != 0 && ::mkdir(m.folder.c_str(), 0777) != 0 && errno != EEXIST) m.io_fail(errno);
        m.tmp_raw = m.temp(".hermes-rows.raw");
        m.tmp_out = m.temp(".partial" + m.suffix);
        m.raw = std::fopen(m.tmp_raw.c_str(), "wb");
        if (!m.raw) m.io_fail(errno);
    }
    for (int r = 0; r < n; ++r) {
        const float *src = rows + static_cast<size_t>(r) * m.width * 3;
        if (m.depth == 16) row_from_float(src, m.width, m.colour, m.colour, reinterpret_cast<uint16_t *>(m.row.data()));
        else row_from_float(src, m.width, m.colour, m.colour, m.row.data());
        if (std::fwrite(m.row.data(), 1, m.row.size(), m.raw) != m.row.size()) m.io_fail(errno ? errno : EIO);
    }
    m.rows_written += n;
}

void FileSink::finish() {
    Impl &m = *impl_;
    if (m.rows_written != m.height)
        fail(HERMES_ERR_INTERNAL, "wrote " + std::to_string(m.rows_written) + " of " + std::to_string(m.height) + " rows");
    if (!m.to_memory && (std::fflush(m.raw) != 0 || std::fclose(m.raw) != 0)) {
        m.raw = nullptr;
        m.io_fail(errno);
    }
    m.raw = nullptr;
    try {
        const VipsBandFormat fmt = m.depth == 16 ? VIPS_FORMAT_USHORT : VIPS_FORMAT_UCHAR;
        vips::VImage image = m.to_memory
                                 ? vips::VImage::new_from_memory(m.pixels.data(), m.pixels.size(), m.width, m.height,
                                                                 m.colour, fmt)
                                 : vips::VImage::rawload(m.tmp_raw.c_str(), m.width, m.height, m.colour,
                                                         vips::VImage::option()->set("format", fmt));
        if (m.alpha) {
            vips::VImage a = *m.alpha;
            if (a.width() != m.width || a.height() != m.height)
                a = a.crop(0, 0, std::min(a.width(), m.width), std::min(a.height(), m.height))
                        .embed(0, 0, m.width, m.height, vips::VImage::option()->set("extend", VIPS_EXTEND_COPY));
            if (a.format() != fmt) a = (a * (fmt == VIPS_FORMAT_USHORT ? 257.0 : 1.0 / 257.0)).cast(fmt);
            image = image.bandjoin(a);
        }
        const VipsInterpretation interp = m.depth == 16 ? (m.colour == 1 ? VIPS_INTERPRETATION_GREY16 : VIPS_INTERPRETATION_RGB16)
                                                        : (m.colour == 1 ? VIPS_INTERPRETATION_B_W : VIPS_INTERPRETATION_sRGB);
        image = image.copy(vips::VImage::option()->set("interpretation", interp));
        if (m.icc) vips_image_set_blob_copy(image.get_image(), "icc-profile-data", m.icc->data(), m.icc->size());
        vips::VOption *save = vips::VImage::option();
        if (m.suffix == ".jpg" || m.suffix == ".webp") save->set("Q", 95);
        if (m.suffix == ".tif") save->set("compression", VIPS_FOREIGN_TIFF_COMPRESSION_DEFLATE);
        if (m.to_memory) {
            void *buf = nullptr;
            size_t n = 0;
            image.write_to_buffer(m.suffix.c_str(), &buf, &n, save);
            m.encoded.assign(static_cast<uint8_t *>(buf), static_cast<uint8_t *>(buf) + n);
            g_free(buf);
            m.pixels = std::vector<uint8_t>();
            return;
        }
        image.write_to_file(m.tmp_out.c_str(), save);
    } catch (const vips::VError &exc) {
        const std::string reason = vips_reason(exc);
        std::string low = reason;
        std::transform(low.begin(), low.end(), low.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        m.cleanup();
        if (low.find("space") != std::string::npos)
            fail(HERMES_ERR_IO, m.name + ": disk full while writing; free space or choose another output folder");
        fail(HERMES_ERR_IO, m.name + ": writing failed (" + reason + ")");
    }
    if (std::rename(m.tmp_out.c_str(), m.path.c_str()) != 0) m.io_fail(errno);
    m.tmp_out.clear();
    m.cleanup();
}

}  // namespace hermes
