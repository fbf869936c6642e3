/* Fuzz target: the symbol-table reader on hostile images, from a buffer and from a file (which
 * must agree), and lookups at addresses the input names, checked against what they promise. The
 * input is the ELF image. */
#include <elf.h>
#include <errno.h>
#include <string.h>
#include <sys/types.h>

#include "fuzz.h"
#include "symtab.h"

static uint64_t read_u64(const uint8_t *data, size_t size, size_t at) {
        uint64_t v = 0;

        if (at < size)
                memcpy(&v, data + at, size - at < sizeof(v) ? size - at : sizeof(v));
        return v;
}

/* What a lookup promises: a name from the image, no longer than the bound, at or below vaddr. */
static void check_lookup(const uint8_t *data, size_t size, const struct symtab *a, const struct symtab *b,
                         uint64_t vaddr) {
        struct symtab_match m, n;
        int r = symtab_lookup(a, vaddr, &m), rb = symtab_lookup(b, vaddr, &n);

        FUZZ_CHECK(r == 0 || r == 1);
        FUZZ_CHECK(r == rb);
        if (r == 0)
                return;
        FUZZ_CHECK(strcmp(m.name, n.name) == 0 && m.value == n.value && m.offset == n.offset &&
                   m.size_unknown == n.size_unknown);
        size_t len = strlen(m.name);
        FUZZ_CHECK(len > 0 && len <= SYMTAB_NAME_MAX);
        FUZZ_CHECK(memmem(data, size, m.name, len));
        FUZZ_CHECK(m.value <= vaddr && m.offset == vaddr - m.value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct symtab *t = NULL, *from_fd = NULL;
        int r, r_fd;

        r = symtab_from_buffer(data, size, &t);
        FUZZ_CHECK(r == 0 || r == -ENOEXEC || r == -ENOMEM);
        r_fd = symtab_from_fd(fuzz_memfd(data, size), &from_fd);
        if (r == -ENOMEM || r_fd == -ENOMEM) {
                symtab_unref(t);
                symtab_unref(from_fd);
                return 0;
        }
        FUZZ_CHECK(r_fd == r);
        if (r < 0)
                return 0;
        FUZZ_CHECK(symtab_origin(t) == symtab_origin(from_fd));
        FUZZ_CHECK(symtab_count(t) == symtab_count(from_fd));
        FUZZ_CHECK((symtab_origin(t) == SYMTAB_NONE) == (symtab_count(t) == 0));
        FUZZ_CHECK(symtab_memory(t) >= symtab_count(t));

        check_lookup(data, size, t, from_fd, 0);
        check_lookup(data, size, t, from_fd, UINT64_MAX);
        /* Addresses the input names: symbol values and sizes are among its words. */
        for (size_t at = 0; at + 8 <= size && at < 64 * 1024; at += 8) {
                uint64_t v = read_u64(data, size, at);

                check_lookup(data, size, t, from_fd, v);
                check_lookup(data, size, t, from_fd, v + 1);
                check_lookup(data, size, t, from_fd, v - 1);
        }
        symtab_unref(t);
        symtab_unref(from_fd);
        return 0;
}
