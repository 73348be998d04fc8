#ifndef TENANT_BACKUP_CLIBPQ_SHIM_H
#define TENANT_BACKUP_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
