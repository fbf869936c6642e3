/* A file's symbol table (.symtab, else .dynsym) read with every size bounded and every offset checked, as an immutable, shared, address-sorted index. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bounds on what is read of a hostile file: a symbol section (24 bytes a symbol: 2.8 million),
 * its string table, and one name (longer ones are left out of the index). */
#define SYMTAB_SECTION_MAX (64u * 1024u * 1024u)
#define SYMTAB_STRINGS_MAX (64u * 1024u * 1024u)
#define SYMTAB_NAME_MAX 4096u

enum symtab_origin {
        SYMTAB_NONE,            /* the file has neither (or no function or object symbol in it) */
        SYMTAB_SYMTAB,          /* .symtab (SHT_SYMTAB) */
        SYMTAB_DYNSYM,          /* .dynsym (SHT_DYNSYM) only */
};

struct symtab;

/* Reads the symbol table of an ELF image in memory / an open file: SHT_SYMTAB where the file has
 * one with a function or object symbol, else SHT_DYNSYM. Only STT_FUNC, STT_GNU_IFUNC and
 * STT_OBJECT symbols with a name, defined in a section of the memory image (SHF_ALLOC; not
 * SHN_ABS, SHN_COMMON or SHN_XINDEX) are kept. A section or string table beyond the bounds above, outside the data, or whose link
 * does not name a string table counts as absent. 0 and *ret (one reference; origin
 * SYMTAB_NONE when nothing usable was found), -ENOEXEC when the ELF header is not usable,
 * -ENOMEM, or -errno of a failing read. */
int symtab_from_buffer(const void *data, size_t size, struct symtab **ret);
int symtab_from_fd(int fd, struct symtab **ret);

/* Another holder (returns t; accepts NULL). Thread-safe. */
struct symtab *symtab_ref(struct symtab *t);
/* Drops a holder; the last one frees t. Accepts NULL; returns NULL. Thread-safe. */
struct symtab *symtab_unref(struct symtab *t);

enum symtab_origin symtab_origin(const struct symtab *t);
size_t symtab_count(const struct symtab *t);
/* The bytes t holds: what a cache charges for keeping it. */
size_t symtab_memory(const struct symtab *t);

struct symtab_match {
        const char *name;       /* NUL-terminated, in t: valid while t is held */
        uint64_t value;         /* st_value */
        uint64_t offset;        /* vaddr - value */
        bool size_unknown;      /* no sized symbol covers vaddr: the nearest preceding one, of size 0 */
};

/* The symbol whose [st_value, st_value + st_size) covers vaddr (the one starting last where
 * several do; any of the aliases at one value), else the nearest symbol at or below vaddr when
 * it has size 0 (size_unknown). 1 and *ret, or 0 when there is none. */
int symtab_lookup(const struct symtab *t, uint64_t vaddr, struct symtab_match *ret);
