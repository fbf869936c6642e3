/* memctl's commands (maps, lookup, modules, vdso, cat, status) and how their failures are explained. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "libmemctl.h"

struct context {
        memctl *c;
        const char *path;
};

struct addresses {
        uint64_t *v;
        size_t n, allocated;
};

/* These return an exit status. */
int connect_failed(const char *path, int r);
int cmd_maps(struct context *ctx, pid_t pid);
int cmd_lookup(struct context *ctx, pid_t pid, const struct addresses *a);
int cmd_modules(struct context *ctx, pid_t pid);
int cmd_vdso(struct context *ctx, pid_t pid);
int cmd_cat(struct context *ctx, pid_t pid, uint64_t address);
int cmd_status(struct context *ctx);
/* memctl lookup-many: one LookupMany call, a group per process. */
int cmd_lookup_many(struct context *ctx, const struct memctl_lookup_group *groups, size_t n);
/* memctl who: the processes that map a file (path) or files with a build ID (hex). */
int cmd_who(struct context *ctx, const char *path, const char *build_id, bool deleted_only);
/* memctl-watch.c */
int cmd_watch(struct context *ctx, pid_t pid);
/* Explains a failed call (its error from the daemon) and returns the exit status. */
int call_failed(memctl *c, const char *path, int r, pid_t pid);
