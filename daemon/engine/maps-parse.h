/* Parser for the text of /proc/PID/maps: the fallback backend, and what tests compare with. */
#pragma once

#include <stddef.h>

#include "mapping.h"

/* The longest line accepted: a name of 64 KiB as the text prints it, plus the columns. The
 * text prints paths beyond PATH_MAX (a file reached through deep directories) in full. */
#define MAPS_LINE_MAX (64 * 1024 + 256)

/* Parses one line (len bytes, without its '\n', not necessarily NUL-terminated) into *ret:
 * range, perms, offset, dev, inode and the name (the rest of the line after the inode
 * column's padding, unescaped: "\012" becomes '\n'), classified with mapping_classify().
 * Returns 0, -EINVAL for a malformed line (*ret untouched), or -ENOMEM.
 * On success *ret is overwritten (not freed first); the caller owns ret->name.
 * An empty line and one longer than MAPS_LINE_MAX are malformed, as is any NUL byte, any
 * deviation from single spaces between the columns, a 17th hex digit / 21st decimal digit,
 * and end < start (end == start parses; normalizing drops it). Leading spaces of a name cannot
 * be told from the padding and are lost; a literal "\012" in a name reads as a newline. */
int maps_parse_line(const char *line, size_t len, struct mapping *ret);

/* Parses a whole maps text (many lines; a final line without '\n' counts). On success
 * appends to *ret and normalizes it (mapping_list_normalize()). -EBADMSG when a line is
 * malformed or longer than MAPS_LINE_MAX (nothing appended), -ENOMEM. An empty line in the
 * middle ("\n\n") is malformed; a trailing '\n' does not start another line. */
int maps_parse_buffer(const char *text, size_t len, struct mapping_list *ret);

/* Reads the open /proc/PID/maps fd from offset 0 to EOF in large reads, parsing as it goes
 * (never holding the whole text), and normalizes the result: sorted, non-overlapping even
 * when the process changed between reads. Retries EINTR. -ESRCH when the process is gone,
 * -EBADMSG as above, -errno of read(). On failure *ret is untouched. On success the lines are
 * appended to *ret and all of *ret is normalized. Reads with pread() from offset 0 (the fd's
 * position is neither used nor moved); a non-seekable fd (pipe) is read as a stream instead.
 * A zombie's maps read as empty: 0 with nothing appended. */
int maps_read_fd(int fd, struct mapping_list *ret);

/* Reads the open /proc/PID/maps fd as maps_read_fd() does, but hands each line to visit as
 * it is parsed (the name lent from the read buffer), in the order read: nothing is sorted or
 * dropped. Returns 0, -EBADMSG for a malformed line (the lines before it were visited), the
 * errors of read(), or the first negative return of visit. Past the first 16 KiB of a
 * seekable fd, a thread of its own reads ahead while visit runs (joined before returning;
 * without a thread the reads go on in the caller). */
int maps_read_each(int fd, mapping_visit_t visit, void *userdata);
