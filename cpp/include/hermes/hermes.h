/*
 * libhermes: run an exported HERMES-IR/SR model from C and C++, without Python.
 *
 * The library loads what `hermes-export` writes and restores images with the same tile
 * grid, blend weights and per-image context as the Python runtime (hermes_deploy.runtime):
 *
 *   - an ONNX pair, `model.onnx` + `model.context.onnx` (portable target, with the
 *     `hermes.spec` metadata), run on the CPU by the OpenVINO backend; or a single
 *     graph (`hermes-export onnx --single-graph`, spec `"single_graph": true`), which
 *     computes the context inside from each tile, so its tiles route independently;
 *   - a TensorRT engine, `model.engine` + `model.engine.json` (its manifest), run on a
 *     CUDA GPU by the TensorRT backend (built only where TensorRT was found).
 *
 * Conventions (after sqlite3.h, zstd.h and llama.h):
 *   - every call returns a hermes_status; HERMES_OK is 0;
 *   - on failure hermes_last_error() returns one line naming the problem and the fix;
 *     the string is per thread and valid until the next failing call on that thread;
 *   - objects are opaque; every create/load call has a matching free that accepts NULL;
 *   - option structs start with `struct_size`: fill them from the matching default_params call, change
 *     what you need, and pass them; a struct from an older header stays accepted;
 *   - output structs (hermes_model_info, hermes_stats) start with `struct_size` too: set it to
 *     the struct's size before the call (hermes_model_info_init(), hermes_stats_init()); the
 *     library writes no more than that many bytes (so a newer library never writes past an
 *     older caller's struct) and sets struct_size to the bytes it wrote;
 *   - status-returning functions are marked must-use (HERMES_NODISCARD).
 *
 * Thread safety: one hermes_model may be shared by any number of threads; each thread
 * creates its own hermes_session from it (sessions are cheap: one inference request
 * each). A session must not be used by two threads at the same time. hermes_model_free
 * must come after every session of the model is freed.
 */
#ifndef HERMES_HERMES_H
#define HERMES_HERMES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HERMES_VERSION_MAJOR 0
#define HERMES_VERSION_MINOR 1
#define HERMES_VERSION_PATCH 0
#define HERMES_VERSION_STRING "0.1.0"

#if defined(_WIN32)
#define HERMES_API __declspec(dllexport)
#else
#define HERMES_API __attribute__((visibility("default")))
#endif

/* A status a caller ignores is a failure it never sees: compilers warn about it. */
#if defined(__GNUC__) || defined(__clang__)
#define HERMES_NODISCARD __attribute__((warn_unused_result))
#else
#define HERMES_NODISCARD
#endif

typedef enum hermes_status {
    HERMES_OK = 0,
    HERMES_ERR_INVALID_ARGUMENT = 1, /* NULL handle, bad option value, wrong buffer size */
    HERMES_ERR_IO = 2,               /* a file is missing, unreadable or cannot be written */
    HERMES_ERR_MODEL = 3,            /* not a HERMES graph, missing context graph, bad spec,
                                        a spec of the other form (pair vs single graph) */
    HERMES_ERR_MISMATCH = 4,         /* engine manifest does not fit this TensorRT/GPU/ONNX */
    HERMES_ERR_IMAGE = 5,            /* corrupt, truncated or unsupported image */
    HERMES_ERR_UNSUPPORTED = 6,      /* backend not built in, precision the CPU lacks */
    HERMES_ERR_BACKEND = 7,          /* the inference backend failed */
    HERMES_ERR_OUT_OF_MEMORY = 8,
    HERMES_ERR_INTERNAL = 9,
    HERMES_ERR_TOO_LARGE = 10,       /* over the pixel limit (max_pixels) */
    HERMES_ERR_FORMAT = 11           /* an image format libhermes does not read or write */
} hermes_status;

typedef enum hermes_backend {
    HERMES_BACKEND_AUTO = 0, /* by the file: .onnx -> OpenVINO, .engine -> TensorRT */
    HERMES_BACKEND_OPENVINO = 1,
    HERMES_BACKEND_TENSORRT = 2
} hermes_backend;

typedef enum hermes_precision {
    HERMES_PRECISION_F32 = 0, /* always f32: OpenVINO's own default is bf16 on AMX CPUs */
    HERMES_PRECISION_BF16 = 1 /* OpenVINO only; needs AVX512-BF16 or AMX-BF16 */
} hermes_precision;

typedef enum hermes_sample {
    HERMES_SAMPLE_U8 = 1,
    HERMES_SAMPLE_U16 = 2,
    HERMES_SAMPLE_F32 = 3 /* float in [0, 1] (in-memory API only): read as is, and the
                             model's output written unclipped and unquantized */
} hermes_sample;

typedef struct hermes_model hermes_model;
typedef struct hermes_session hermes_session;

typedef struct hermes_model_params {
    uint32_t struct_size;       /* sizeof(hermes_model_params) */
    hermes_backend backend;     /* default AUTO */
    hermes_precision precision; /* default F32 */
    int32_t threads;            /* OpenVINO inference threads per stream; 0 = all cores */
    int32_t device;             /* TensorRT: CUDA device ordinal; default 0 */
    int32_t cuda_graph;         /* TensorRT: capture and replay CUDA graphs; default 0 */
    int32_t streams;            /* OpenVINO: sessions that compute at the same time (CPU
                                   streams, `threads` each); default 1 - set it to the
                                   number of threads that restore concurrently */
} hermes_model_params;

typedef struct hermes_restore_params {
    uint32_t struct_size;  /* sizeof(hermes_restore_params) */
    int32_t tile_height;   /* input pixels; default 256 (a fixed-tile model's own tile wins) */
    int32_t tile_width;
    int32_t overlap;       /* input pixels; -1 (default) = the model's recommended overlap */
    int32_t batch;         /* tiles per inference call; default 1 */
    int32_t context_size;  /* images with a longer side get their context from a
                              downscaled copy; default 1024; unused by a single graph */
    int64_t max_pixels;    /* file API: refuse bigger images before decoding; 0 = no limit;
                              default 89478485 (Pillow's decompression-bomb limit) */
} hermes_restore_params;

/* An image in memory: interleaved samples, rows top to bottom. channels: 1 grey, 2 grey +
 * alpha, 3 RGB, 4 RGBA. Alpha is never seen by the network: it is upscaled on its own
 * (bicubic) as the Python runtime does. stride: bytes between rows, 0 = packed. */
typedef struct hermes_image {
    int32_t width;
    int32_t height;
    int32_t channels;
    hermes_sample sample;
    size_t stride;
    void *data;
} hermes_image;

typedef struct hermes_model_info {
    uint32_t struct_size; /* set to sizeof(hermes_model_info) before the call */
    int32_t scale;
    int32_t in_channels;
    int32_t out_channels;
    int32_t size_multiple;
    int32_t tile_overlap;     /* recommended overlap, input pixels */
    int32_t fixed_tile_height; /* 0 when the graph takes any tile */
    int32_t fixed_tile_width;
    int32_t fixed_batch;       /* 0 when the graph takes any batch */
    int32_t context_channels;  /* values of the per-image context; 0 for a single graph
                                  (added after 0.1.0: written when struct_size covers it) */
} hermes_model_info;

typedef struct hermes_stats {
    uint32_t struct_size;   /* set to sizeof(hermes_stats) before the call */
    int32_t tiles;
    int32_t grid_rows;
    int32_t grid_cols;
    int32_t tile_height;
    int32_t tile_width;
    int32_t overlap;
    double compute_seconds; /* inside the backend, tiles only */
    double context_seconds; /* the per-image context graph; 0 for a single graph */
    double wall_seconds;    /* the whole call */
} hermes_stats;

/* Output structs ready to pass: zeroed, struct_size set (C and C++ alike). */
#ifdef __cplusplus
#define HERMES_ZERO_ {}
#else
#define HERMES_ZERO_ = {0}
#endif
static inline hermes_model_info hermes_model_info_init(void) {
    hermes_model_info info HERMES_ZERO_;
    info.struct_size = (uint32_t)sizeof(info);
    return info;
}
static inline hermes_stats hermes_stats_init(void) {
    hermes_stats stats HERMES_ZERO_;
    stats.struct_size = (uint32_t)sizeof(stats);
    return stats;
}
#undef HERMES_ZERO_

HERMES_API const char *hermes_version(void);
HERMES_API const char *hermes_status_name(hermes_status status);
/* The last failure on this thread: one line, what went wrong and how to fix it. */
HERMES_API const char *hermes_last_error(void);
/* Backends compiled into this build, e.g. "openvino" or "openvino,tensorrt". */
HERMES_API const char *hermes_backends(void);

HERMES_API hermes_model_params hermes_model_default_params(void);
HERMES_API hermes_restore_params hermes_restore_default_params(void);

/* Load `path` (model.onnx or model.engine; params may be NULL for the defaults). */
HERMES_API HERMES_NODISCARD hermes_status hermes_model_load(const char *path, const hermes_model_params *params,
                                           hermes_model **out);
HERMES_API void hermes_model_free(hermes_model *model);
HERMES_API HERMES_NODISCARD hermes_status hermes_model_get_info(const hermes_model *model, hermes_model_info *out);
/* The ModelSpec as JSON; the string lives as long as the model. */
HERMES_API HERMES_NODISCARD hermes_status hermes_model_spec_json(const hermes_model *model, const char **out);
/* The backend in words, e.g. "openvino (CPU, f32)"; lives as long as the model. */
HERMES_API HERMES_NODISCARD hermes_status hermes_model_backend_name(const hermes_model *model, const char **out);

/* A session: one inference request over the model, with its restore params (may be NULL). */
HERMES_API HERMES_NODISCARD hermes_status hermes_session_create(hermes_model *model,
                                               const hermes_restore_params *params,
                                               hermes_session **out);
HERMES_API void hermes_session_free(hermes_session *session);
HERMES_API HERMES_NODISCARD hermes_status hermes_session_set_params(hermes_session *session,
                                                   const hermes_restore_params *params);

/* The output size for an input size (scale times each side). */
HERMES_API HERMES_NODISCARD hermes_status hermes_output_size(const hermes_session *session, int32_t width,
                                            int32_t height, int32_t *out_width,
                                            int32_t *out_height);

/* Restore `in` into `out`. `out` must be allocated by the caller with the output size,
 * the same channel count and the same sample type as `in`; a buffer of another size is
 * HERMES_ERR_INVALID_ARGUMENT and nothing is written. */
HERMES_API HERMES_NODISCARD hermes_status hermes_restore(hermes_session *session, const hermes_image *in,
                                        hermes_image *out);

/* Restore the image file `in_path` (PNG, JPEG, TIFF, WebP) into `out_path` (format from
 * its suffix). Rows are streamed with libvips, so memory stays flat in image size. The
 * output is written under a temporary name and renamed: it is complete or absent. */
HERMES_API HERMES_NODISCARD hermes_status hermes_restore_file(hermes_session *session, const char *in_path,
                                             const char *out_path);

/* Restore an encoded image in memory (PNG, JPEG, TIFF, WebP; `size` bytes at `data`) into
 * a newly allocated encoded image in *out (*out_size bytes; free it with hermes_free).
 * `format` is "png", "jpg", "webp" or "tif", or NULL for the input's own format. The
 * pixel limit (max_pixels) is checked before decoding: HERMES_ERR_TOO_LARGE; a format
 * it does not read: HERMES_ERR_FORMAT; a corrupt or truncated image: HERMES_ERR_IMAGE.
 * On failure *out is NULL. */
HERMES_API HERMES_NODISCARD hermes_status hermes_restore_buffer(hermes_session *session, const void *data, size_t size,
                                               const char *format, void **out, size_t *out_size);
HERMES_API void hermes_free(void *buffer);

/* The per-image context: every tile of an image is routed by one context, which restore
 * computes from the whole image. hermes_image_context computes it for `in` into `out`
 * (`count` = hermes_model_info.context_channels); hermes_session_set_context makes the
 * session's following restores use `context` instead of computing their own (one
 * routing for a whole shot of video, say); NULL returns to computing it. A single graph
 * has no context to give or take: HERMES_ERR_INVALID_ARGUMENT. */
HERMES_API HERMES_NODISCARD hermes_status hermes_image_context(hermes_session *session, const hermes_image *in,
                                                               float *out, size_t count);
HERMES_API HERMES_NODISCARD hermes_status hermes_session_set_context(hermes_session *session, const float *context,
                                                                     size_t count);

/* Figures of the session's last successful restore. */
HERMES_API HERMES_NODISCARD hermes_status hermes_session_last_stats(const hermes_session *session,
                                                   hermes_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* HERMES_HERMES_H */
