#ifndef TENANT_BACKUP_CZSTD_SHIM_H
#define TENANT_BACKUP_CZSTD_SHIM_H
#include <zstd.h>
#endif
