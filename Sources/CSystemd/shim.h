#ifndef TENANT_BACKUP_CSYSTEMD_SHIM_H
#define TENANT_BACKUP_CSYSTEMD_SHIM_H
// Only the non-variadic entry points are usable from Swift: sd_notify and sd_journal_sendv.
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#endif
