/* How memctl shows answers: aligned tables, escaped names, sizes, JSON as --json asks. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "libmemctl.h"
#include "memctl-cli.h"

/* A table printed with aligned columns. The last column is not padded, so that a long name
 * only overflows at the end of its line. */
struct table {
        size_t n_columns;
        const char *const *header;
        const bool *right;      /* right-aligned columns */
        char **cells;           /* row after row */
        size_t n_cells, allocated;
};

void table_done(struct table *t);
_printf_(2, 3) int table_addf(struct table *t, const char *fmt, ...);
void table_print(const struct table *t);

/* s with control characters and bytes outside well-formed UTF-8 as \ooo; NULL without memory. */
char *escape(const char *s);
/* A mapping's path byte for byte (libmemctl's path_exact where it has one): not UTF-8 perhaps. */
const char *mapping_exact_path(const struct memctl_mapping *m);
char *mapping_display_name(const struct memctl_mapping *m);
const char *format_size(uint64_t v, char buf[static 32]);
const char *build_id_display(const struct memctl_mapping *m);

int print_json(const char *text);
int print_lookup_json(const memctl_lookup_reply *l);
