/* The PROCMAP_QUERY backend: asks the kernel about VMAs through an open /proc/PID/maps fd (Linux 6.11+). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mapping.h"

/* Name storage reused across queries of one request; grows on demand up to a bound. */
struct procmap_buf {
        char *name;
        size_t size;
        char *text_name;        /* PROCMAP_NAME_LENT: a name read from the text, lent */
};

void procmap_buf_done(struct procmap_buf *b);

enum {
        PROCMAP_COVERING_OR_NEXT = 1u << 0, /* the VMA at addr, else the next one above it */
        PROCMAP_FILE_BACKED = 1u << 1,      /* only VMAs backed by a file */
        PROCMAP_EXECUTABLE = 1u << 2,       /* only executable VMAs */
        PROCMAP_BUILD_ID = 1u << 3,         /* ask the kernel for the file's build ID too */
        PROCMAP_NAME_OPTIONAL = 1u << 4,    /* a name the ioctl cannot give may be left NULL */
        /* The name is lent from buf until its next query (no malloc per VMA): the mapping is
         * then not passed to mapping_done(). Not with PROCMAP_BUILD_ID. */
        PROCMAP_NAME_LENT = 1u << 5,
};

/* One query. Returns 0 and fills *ret (name allocated and classified), -ENOENT when no VMA
 * matches, -ESRCH when the process exited or exec'd since the fd was opened, -ENOTTY when
 * the kernel lacks the ioctl, other -errno. A name the ioctl cannot give (a path longer than
 * PATH_MAX) is read from the maps text through the same fd (-EAGAIN when the text no longer
 * has the VMA), unless PROCMAP_NAME_OPTIONAL leaves it NULL (the kind then stays "file"). */
int procmap_query(int maps_fd, uint64_t addr, unsigned flags, struct procmap_buf *buf, struct mapping *ret);

/* Lists every VMA (with the filters of flags) into *ret, in address order. */
int procmap_list(int maps_fd, unsigned flags, struct mapping_list *ret);

/* procmap_list() without the list: visits each VMA in address order, lent for the call (see
 * mapping_visit_t; its name lives in a buffer of the listing). Not with PROCMAP_BUILD_ID.
 * Errors as for procmap_query(), or visit's first negative return. */
int procmap_list_each(int maps_fd, unsigned flags, mapping_visit_t visit, void *userdata);

/* The same list as procmap_list(maps_fd, 0, ...) (page sizes and names included), but read
 * from the maps text, with PROCMAP_QUERY asked only what the text does not tell exactly: the
 * page size of each distinct file (hugetlbfs, device DAX) and of file-less memory, and the
 * names the text may have changed (an escaped newline; a name that is not a path or a
 * bracketed special). Like procmap_list(), it leaves out the gate area ([vsyscall]). When the process changed between the text and a query, the listing is redone with
 * procmap_list(). Errors as for procmap_list() and maps_read_fd(); *ret untouched then. */
int procmap_list_text(int maps_fd, struct mapping_list *ret);

/* procmap_list_text() without the list: visits each mapping, in address order, as it is read
 * (see mapping_visit_t). When the process changed between the text and a query, the rest of the
 * listing (from the end of the last mapping visited) comes from one query per VMA. Errors as for
 * procmap_list_text(), or visit's; some mappings may have been visited before an error. */
int procmap_list_text_each(int maps_fd, mapping_visit_t visit, void *userdata);

/* True when the running kernel answers PROCMAP_QUERY on this maps fd. */
bool procmap_supported(int maps_fd);
