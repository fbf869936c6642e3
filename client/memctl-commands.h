/* memctl's commands (maps, lookup, modules, vdso, cat, status) and how their failures are explained. */
#pragma once

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
/* memctl-watch.c */
int cmd_watch(struct context *ctx, pid_t pid);
/* Explains a failed call (its error from the daemon) and returns the exit status. */
int call_failed(memctl *c, const char *path, int r, pid_t pid);
