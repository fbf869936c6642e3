/* The symbols of a lookup's answers: each touched ELF file's symbol table from the cache, else read off the serving thread (with its debug file where it has no .symtab), and looked up at each elf_vaddr. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "facts.h"
#include "layout.h"
#include "process.h"
#include "symtab.h"

/* The symbol at one address: name NULL when there is none (no ELF file, no table, no symbol
 * covering it, or its table could not be read for this request). */
struct symbol_answer {
        const char *name;       /* held by the struct symbols it came in */
        uint64_t offset;        /* elf_vaddr - st_value */
        bool size_unknown;      /* see symtab_match */
};

struct symbols {
        struct symtab **tables;         /* per mapping of the layout; references */
        size_t n_tables;
        struct symbol_answer *answers;  /* per result */
};

/* Answers for results[n], from l (the lookup's layout of p; its mappings' facts). A table is read
 * with the caller's credentials on the runner within cfg's budget; one that could not be
 * (timeout, access) leaves its answers empty. A kept table answers at once for a world-readable
 * file; for any other, only once the caller opened the file on the runner. 0 and *ret, or
 * -ENOMEM. */
int symbolize(const struct facts_config *cfg, const struct process *p, const struct layout *l,
              const struct layout_result *results, size_t n, struct symbols *ret);

/* Drops what s holds. Accepts a zeroed one. */
void symbols_done(struct symbols *s);

/* The debug file of a build ID under dir: DIR/.build-id/xx/rest.debug into buf (size bytes).
 * -ENAMETOOLONG, -EINVAL (no build ID). */
int symbolize_debug_path(const char *dir, const uint8_t *id, size_t id_len, char *buf, size_t size);

/* The table of an open ELF file as a symbolizer wants it: its .symtab, else the .symtab of the
 * debug file of its build ID under debug_dir (when that file carries the same build ID), else
 * its .dynsym. 0 and *ret, or -errno as symtab_from_fd(). */
int symbolize_read_file(int fd, const uint8_t *id, size_t id_len, const char *debug_dir, struct symtab **ret);
