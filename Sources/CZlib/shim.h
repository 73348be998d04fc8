#ifndef TENANT_BACKUP_CZLIB_SHIM_H
#define TENANT_BACKUP_CZLIB_SHIM_H
#include <zlib.h>

// deflateInit2 is a macro; this wrapper makes it callable from Swift (gzip framing: windowBits 15 + 16).
static inline int tenant_backup_deflate_init_gzip(z_stream *stream, int level) {
    return deflateInit2(stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
}

static inline int tenant_backup_inflate_init_gzip(z_stream *stream) {
    return inflateInit2(stream, 15 + 16);
}
#endif
