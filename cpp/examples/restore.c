/* Restore one image file with libhermes from C:  restore_c MODEL IN OUT
 * MODEL is model.onnx (with model.context.onnx beside it) or model.engine. */
#include <hermes/hermes.h>
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: restore_c MODEL IN OUT\n");
        return 2;
    }
    hermes_model_params mp = hermes_model_default_params();
    mp.precision = HERMES_PRECISION_F32;
    hermes_model *model = NULL;
    if (hermes_model_load(argv[1], &mp, &model) != HERMES_OK) {
        fprintf(stderr, "restore_c: %s\n", hermes_last_error());
        return 1;
    }
    hermes_restore_params rp = hermes_restore_default_params(); /* tile 256, the model's overlap */
    hermes_session *session = NULL;
    hermes_status st = hermes_session_create(model, &rp, &session);
    if (st == HERMES_OK) st = hermes_restore_file(session, argv[2], argv[3]);
    if (st != HERMES_OK) {
        fprintf(stderr, "restore_c: %s\n", hermes_last_error());
    } else {
        hermes_stats stats = hermes_stats_init();
        if (hermes_session_last_stats(session, &stats) == HERMES_OK)
            printf("%s -> %s: %d tiles (%dx%d grid) in %.2f s\n", argv[2], argv[3], stats.tiles, stats.grid_rows,
               stats.grid_cols, stats.wall_seconds);
    }
    hermes_session_free(session);
    hermes_model_free(model);
    return st == HERMES_OK ? 0 : 1;
}
