/* The symbol-table reader and the symbol cache: crafted tables (32/64-bit, either byte order),
 * the lookup rules (covering, nested, aliases, size 0), and hostile sizes and offsets. */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "cleanup.h"
#include "elf-builder.h"
#include "symbol-cache.h"
#include "symtab.h"

struct tsym {
        const char *name;
        uint64_t value, size;
        uint8_t type;
        uint16_t shndx;
};

/* Sections of a crafted image. */
enum {
        S_NULL,
        S_TEXT,         /* SHF_ALLOC */
        S_COMMENT,      /* not allocated */
        S_SYMTAB,
        S_STRTAB,
        S_DYNSYM,
        S_DYNSTR,
        S_COUNT,
};

struct layout_info {
        size_t symtab_off, strtab_off, dynsym_off, dynstr_off;
};

static size_t sym_size(uint8_t cls) {
        return cls == ELFCLASS64 ? sizeof(Elf64_Sym) : sizeof(Elf32_Sym);
}

#define SYM_FIELD(cls, f) ((cls) == ELFCLASS64 ? offsetof(Elf64_Sym, f) : offsetof(Elf32_Sym, f))

static size_t strings_size(const struct tsym *s, size_t n) {
        size_t len = 1;

        for (size_t i = 0; i < n; i++)
                len += strlen(s[i].name) + 1;
        return len;
}

static void put_table(const struct eb_image *img, size_t sym_off, size_t str_off, const struct tsym *s, size_t n) {
        size_t pos = 1;

        /* Entry 0 is the null symbol, as in every real table. */
        for (size_t i = 0; i < n; i++) {
                size_t e = sym_off + (i + 1) * sym_size(img->elf_class);

                strcpy((char *) img->data + str_off + pos, s[i].name);
                eb_put32(img, e + SYM_FIELD(img->elf_class, st_name), (uint32_t) pos);
                img->data[e + SYM_FIELD(img->elf_class, st_info)] = ELF64_ST_INFO(STB_GLOBAL, s[i].type);
                eb_put16(img, e + SYM_FIELD(img->elf_class, st_shndx), s[i].shndx);
                eb_put_word(img, e + SYM_FIELD(img->elf_class, st_value), s[i].value);
                eb_put_word(img, e + SYM_FIELD(img->elf_class, st_size), s[i].size);
                pos += strlen(s[i].name) + 1;
        }
}

static void put_section(const struct eb_image *img, size_t i, uint32_t type, uint64_t flags, uint64_t off,
                        uint64_t size, uint32_t link, uint64_t entsize) {
        eb_put32(img, EB_SHDR_FIELD(img, i, sh_type), type);
        eb_put_word(img, EB_SHDR_FIELD(img, i, sh_flags), flags);
        eb_put_word(img, EB_SHDR_FIELD(img, i, sh_offset), off);
        eb_put_word(img, EB_SHDR_FIELD(img, i, sh_size), size);
        eb_put32(img, EB_SHDR_FIELD(img, i, sh_link), link);
        eb_put_word(img, EB_SHDR_FIELD(img, i, sh_entsize), entsize);
}

/* An ELF image with a .symtab of symtab[n_symtab] (none when 0) and a .dynsym of dyn[n_dyn]. */
static void build(uint8_t cls, uint8_t order, const struct tsym *symtab, size_t n_symtab, const struct tsym *dyn,
                  size_t n_dyn, struct eb_image *img, struct layout_info *info) {
        size_t ehsize = cls == ELFCLASS64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
        size_t shentsize = cls == ELFCLASS64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr);
        size_t ss = sym_size(cls), pos = ehsize;
        struct layout_info l;

        l.symtab_off = pos;
        pos += (n_symtab + 1) * ss;
        l.strtab_off = pos;
        pos += strings_size(symtab, n_symtab);
        pos = (pos + 7) & ~(size_t) 7;
        l.dynsym_off = pos;
        pos += (n_dyn + 1) * ss;
        l.dynstr_off = pos;
        pos += strings_size(dyn, n_dyn);
        pos = (pos + 7) & ~(size_t) 7;

        *img = (struct eb_image) {
                .size = pos + S_COUNT * shentsize,
                .elf_class = cls,
                .elf_data = order,
                .ehsize = ehsize,
                .shoff = pos,
                .shentsize = shentsize,
                .shnum = S_COUNT,
        };
        img->data = calloc(1, img->size);
        assert_non_null(img->data);
        memcpy(img->data, ELFMAG, SELFMAG);
        img->data[EI_CLASS] = cls;
        img->data[EI_DATA] = order;
        img->data[EI_VERSION] = EV_CURRENT;
        eb_put16(img, EB_EHDR_FIELD(img, e_type), ET_DYN);
        eb_put_word(img, EB_EHDR_FIELD(img, e_shoff), img->shoff);
        eb_put16(img, EB_EHDR_FIELD(img, e_ehsize), (uint16_t) ehsize);
        eb_put16(img, EB_EHDR_FIELD(img, e_shentsize), (uint16_t) shentsize);
        eb_put16(img, EB_EHDR_FIELD(img, e_shnum), S_COUNT);

        put_section(img, S_TEXT, SHT_NOBITS, SHF_ALLOC | SHF_EXECINSTR, 0, 0x100000, 0, 0);
        put_section(img, S_COMMENT, SHT_PROGBITS, 0, 0, 0, 0, 0);
        if (n_symtab > 0) {
                put_section(img, S_SYMTAB, SHT_SYMTAB, 0, l.symtab_off, (n_symtab + 1) * ss, S_STRTAB, ss);
                put_section(img, S_STRTAB, SHT_STRTAB, 0, l.strtab_off, strings_size(symtab, n_symtab), 0, 0);
                put_table(img, l.symtab_off, l.strtab_off, symtab, n_symtab);
        }
        put_section(img, S_DYNSYM, SHT_DYNSYM, SHF_ALLOC, l.dynsym_off, (n_dyn + 1) * ss, S_DYNSTR, ss);
        put_section(img, S_DYNSTR, SHT_STRTAB, SHF_ALLOC, l.dynstr_off, strings_size(dyn, n_dyn), 0, 0);
        put_table(img, l.dynsym_off, l.dynstr_off, dyn, n_dyn);
        if (info)
                *info = l;
}

static const struct tsym full[] = {
        { "f1", 0x1000, 0x10, STT_FUNC, S_TEXT },
        { "f1_alias", 0x1000, 0x10, STT_FUNC, S_TEXT },
        { "outer", 0x2000, 0x100, STT_FUNC, S_TEXT },
        { "inner", 0x2040, 0x10, STT_FUNC, S_TEXT },
        { "label", 0x3000, 0, STT_FUNC, S_TEXT },
        { "g", 0x3100, 0x10, STT_GNU_IFUNC, S_TEXT },
        { "table", 0x4000, 0x40, STT_OBJECT, S_TEXT },
        { "untyped", 0x5000, 0x10, STT_NOTYPE, S_TEXT },
        { "warning", 0x6000, 0x10, STT_OBJECT, S_COMMENT },
        { "undefined", 0x7000, 0x10, STT_FUNC, SHN_UNDEF },
        { "absolute", 0x8000, 0x10, STT_FUNC, SHN_ABS },
        { "file.c", 0x9000, 0x10, STT_FILE, S_TEXT },
};

static const struct tsym exported[] = {
        { "f1", 0x1000, 0x10, STT_FUNC, S_TEXT },
};

static void expect(const struct symtab *t, uint64_t vaddr, const char *name, const char *alias, uint64_t offset,
                   bool size_unknown) {
        struct symtab_match m;
        int r = symtab_lookup(t, vaddr, &m);

        if (!name) {
                assert_int_equal(r, 0);
                return;
        }
        assert_int_equal(r, 1);
        if (strcmp(m.name, name) != 0)
                assert_string_equal(m.name, alias ?: name);
        assert_int_equal(m.offset, offset);
        assert_int_equal(m.value, vaddr - offset);
        assert_int_equal(m.size_unknown, size_unknown);
}

static void check_full(const struct symtab *t) {
        assert_int_equal(symtab_origin(t), SYMTAB_SYMTAB);
        /* f1 + alias, outer, inner, label, g, table. */
        assert_int_equal(symtab_count(t), 7);
        expect(t, 0xfff, NULL, NULL, 0, false);
        expect(t, 0x1000, "f1", "f1_alias", 0, false);
        expect(t, 0x100f, "f1", "f1_alias", 0xf, false);
        expect(t, 0x1010, NULL, NULL, 0, false);        /* a gap after a sized symbol */
        expect(t, 0x2000, "outer", NULL, 0, false);
        expect(t, 0x2045, "inner", NULL, 5, false);     /* the one that starts last */
        expect(t, 0x2050, "outer", NULL, 0x50, false);
        expect(t, 0x20ff, "outer", NULL, 0xff, false);
        expect(t, 0x3000, "label", NULL, 0, true);
        expect(t, 0x30ff, "label", NULL, 0xff, true);
        expect(t, 0x3105, "g", NULL, 5, false);
        expect(t, 0x3110, NULL, NULL, 0, false);
        expect(t, 0x4020, "table", NULL, 0x20, false);
        expect(t, 0x5005, NULL, NULL, 0, false);        /* NOTYPE is not kept */
        expect(t, 0x6005, NULL, NULL, 0, false);        /* nor a symbol of an unallocated section */
        expect(t, 0x7005, NULL, NULL, 0, false);
        expect(t, 0x8005, NULL, NULL, 0, false);
        expect(t, 0x9005, NULL, NULL, 0, false);
}

static void test_lookup_rules(void **state) {
        const uint8_t classes[] = { ELFCLASS64, ELFCLASS32 }, orders[] = { ELFDATA2LSB, ELFDATA2MSB };

        (void) state;
        for (size_t c = 0; c < 2; c++)
                for (size_t o = 0; o < 2; o++) {
                        struct eb_image img;
                        struct symtab *t = NULL;

                        build(classes[c], orders[o], full, ELEMENTSOF(full), exported, ELEMENTSOF(exported), &img, NULL);
                        assert_int_equal(symtab_from_buffer(img.data, img.size, &t), 0);
                        check_full(t);
                        assert_true(symtab_memory(t) > 0);
                        symtab_unref(t);

                        /* The file reader reads the same. */
                        int fd = memfd_create("symtab", MFD_CLOEXEC);
                        assert_true(fd >= 0);
                        assert_int_equal(write(fd, img.data, img.size), (ssize_t) img.size);
                        assert_int_equal(symtab_from_fd(fd, &t), 0);
                        check_full(t);
                        symtab_unref(t);
                        close(fd);
                        eb_image_done(&img);
                }
}

static void test_dynsym_fallback(void **state) {
        struct eb_image img;
        struct symtab *t = NULL;

        (void) state;
        build(ELFCLASS64, ELFDATA2LSB, NULL, 0, exported, ELEMENTSOF(exported), &img, NULL);
        assert_int_equal(symtab_from_buffer(img.data, img.size, &t), 0);
        assert_int_equal(symtab_origin(t), SYMTAB_DYNSYM);
        expect(t, 0x1003, "f1", NULL, 3, false);
        expect(t, 0x2003, NULL, NULL, 0, false);
        symtab_unref(t);
        eb_image_done(&img);

        /* Not ELF; no sections at all. */
        static const char junk[] = "not an ELF file";
        assert_int_equal(symtab_from_buffer(junk, sizeof(junk), &t), -ENOEXEC);
        assert_int_equal(symtab_from_buffer(NULL, 0, &t), -ENOEXEC);
        assert_int_equal(symtab_from_buffer(NULL, 5, &t), -EINVAL);
}

/* A broken .symtab counts as absent: the .dynsym answers. */
static void expect_dynsym_only(const struct eb_image *img) {
        struct symtab *t = NULL;

        assert_int_equal(symtab_from_buffer(img->data, img->size, &t), 0);
        assert_int_equal(symtab_origin(t), SYMTAB_DYNSYM);
        symtab_unref(t);
}

static void test_hostile(void **state) {
        struct layout_info l;
        struct eb_image img;
        struct symtab *t = NULL;

        (void) state;
        build(ELFCLASS64, ELFDATA2LSB, full, ELEMENTSOF(full), exported, ELEMENTSOF(exported), &img, &l);
        uint8_t *pristine = malloc(img.size);
        assert_non_null(pristine);
        memcpy(pristine, img.data, img.size);
#define RESET() memcpy(img.data, pristine, img.size)

        /* The string table's link out of the table, to a non-STRTAB, to section 0. */
        eb_put32(&img, EB_SHDR_FIELD(&img, S_SYMTAB, sh_link), 1000);
        expect_dynsym_only(&img);
        eb_put32(&img, EB_SHDR_FIELD(&img, S_SYMTAB, sh_link), S_TEXT);
        expect_dynsym_only(&img);
        eb_put32(&img, EB_SHDR_FIELD(&img, S_SYMTAB, sh_link), 0);
        expect_dynsym_only(&img);
        RESET();
        /* Sizes past the data, huge, wrapping; entries too small or absurd. */
        const uint64_t sizes[] = { img.size, UINT64_MAX, UINT64_MAX - 8, (uint64_t) SYMTAB_SECTION_MAX + 24 };
        for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                eb_put_word(&img, EB_SHDR_FIELD(&img, S_SYMTAB, sh_size), sizes[i]);
                expect_dynsym_only(&img);
                RESET();
                eb_put_word(&img, EB_SHDR_FIELD(&img, S_STRTAB, sh_size), sizes[i]);
                expect_dynsym_only(&img);
                RESET();
                eb_put_word(&img, EB_SHDR_FIELD(&img, S_SYMTAB, sh_offset), sizes[i]);
                expect_dynsym_only(&img);
                RESET();
        }
        const uint64_t entsizes[] = { 0, 1, 23, 257, UINT64_MAX };
        for (size_t i = 0; i < ELEMENTSOF(entsizes); i++) {
                eb_put_word(&img, EB_SHDR_FIELD(&img, S_SYMTAB, sh_entsize), entsizes[i]);
                expect_dynsym_only(&img);
                RESET();
        }
        /* Name offsets past the string table are dropped, one by one. */
        eb_put32(&img, l.symtab_off + sizeof(Elf64_Sym) + offsetof(Elf64_Sym, st_name), 0xfffffff0);
        assert_int_equal(symtab_from_buffer(img.data, img.size, &t), 0);
        assert_int_equal(symtab_count(t), 6);
        t = symtab_unref(t);
        RESET();
        /* A string table without its last NUL: the name ends at the table's end. */
        eb_put_word(&img, EB_SHDR_FIELD(&img, S_STRTAB, sh_size), strings_size(full, ELEMENTSOF(full)) - 1);
        assert_int_equal(symtab_from_buffer(img.data, img.size, &t), 0);
        assert_int_equal(symtab_origin(t), SYMTAB_SYMTAB);
        t = symtab_unref(t);
        RESET();
        /* A value near the top: the symbol ends at 2^64. */
        eb_put_word(&img, l.symtab_off + sizeof(Elf64_Sym) + offsetof(Elf64_Sym, st_value), UINT64_MAX - 4);
        assert_int_equal(symtab_from_buffer(img.data, img.size, &t), 0);
        expect(t, UINT64_MAX - 1, "f1", NULL, 3, false);
        t = symtab_unref(t);
        RESET();
        /* Section count beyond the bound; the section table outside the data. */
        eb_put16(&img, EB_EHDR_FIELD(&img, e_shnum), 0xfff0);
        assert_int_equal(symtab_from_buffer(img.data, img.size, &t), 0);
        assert_int_equal(symtab_origin(t), SYMTAB_NONE);
        expect(t, 0x1000, NULL, NULL, 0, false);
        t = symtab_unref(t);
        RESET();

        /* Every prefix of the image (a truncated file), and every byte flipped: no read outside
         * the data (ASan), and whatever is found lies in what is there. */
        for (size_t len = 0; len < img.size; len++) {
                if (symtab_from_buffer(img.data, len, &t) == 0)
                        t = symtab_unref(t);
        }
        for (size_t i = 0; i < img.size; i++) {
                img.data[i] ^= 0xa5;
                if (symtab_from_buffer(img.data, img.size, &t) == 0) {
                        struct symtab_match m;
                        for (uint64_t a = 0xff0; a < 0x1020; a += 3)
                                if (symtab_lookup(t, a, &m) > 0)
                                        assert_true(strlen(m.name) <= SYMTAB_NAME_MAX);
                        t = symtab_unref(t);
                }
                img.data[i] ^= 0xa5;
        }
#undef RESET
        free(pristine);
        eb_image_done(&img);
}

static struct symtab *table_of(const struct tsym *s, size_t n) {
        struct eb_image img;
        struct symtab *t = NULL;

        build(ELFCLASS64, ELFDATA2LSB, s, n, exported, ELEMENTSOF(exported), &img, NULL);
        assert_int_equal(symtab_from_buffer(img.data, img.size, &t), 0);
        eb_image_done(&img);
        return t;
}

static void test_cache(void **state) {
        struct symbol_cache *c = NULL;
        struct symbol_cache_stats st;
        struct symbol_key k1, k2, k1_other_owner, k_file;
        struct elf_cache_key file = { .dev = 1, .ino = 2, .size = 3 };
        const uint8_t id1[] = { 1, 2, 3, 4 }, id2[] = { 5, 6, 7, 8 };
        struct symtab *a = table_of(full, ELEMENTSOF(full)), *b = table_of(exported, ELEMENTSOF(exported)), *got;
        size_t one = symtab_memory(a) + 256;

        (void) state;
        symbol_key_init(&k1, id1, sizeof(id1), &file, 0);
        symbol_key_init(&k2, id2, sizeof(id2), &file, 0);
        symbol_key_init(&k1_other_owner, id1, sizeof(id1), &file, 1000);
        symbol_key_init(&k_file, NULL, 0, &file, 0);

        /* Room for one table of a's size. */
        assert_int_equal(symbol_cache_new(one + one / 2, &c), 0);
        assert_null(symbol_cache_get(c, &k1));
        assert_int_equal(symbol_cache_put(c, &k1, a), 0);
        got = symbol_cache_get(c, &k1);
        assert_ptr_equal(got, a);
        symtab_unref(got);
        /* Another owner's file with the same build ID is another entry. */
        assert_null(symbol_cache_get(c, &k1_other_owner));
        assert_null(symbol_cache_get(c, &k_file));
        /* A second table evicts the first when both do not fit. */
        assert_int_equal(symbol_cache_put(c, &k2, a), 0);
        assert_null(symbol_cache_get(c, &k1));
        got = symbol_cache_get(c, &k2);
        assert_ptr_equal(got, a);
        symtab_unref(got);
        /* Replacing keeps one entry. */
        assert_int_equal(symbol_cache_put(c, &k2, b), 0);
        symbol_cache_get_stats(c, &st);
        assert_int_equal(st.entries, 1);
        assert_true(st.bytes >= symtab_memory(b) && st.bytes <= st.max_bytes);
        assert_int_equal(st.hits, 2);
        assert_int_equal(st.misses, 4);
        symbol_cache_free(c);

        /* A table larger than the bound is not kept. */
        assert_int_equal(symbol_cache_new(64, &c), 0);
        assert_int_equal(symbol_cache_put(c, &k1, a), 0);
        assert_null(symbol_cache_get(c, &k1));
        symbol_cache_get_stats(c, &st);
        assert_int_equal(st.entries, 0);
        assert_int_equal(st.bytes, 0);
        symbol_cache_free(c);

        /* The cache's references are its own: a table outlives it while held. */
        symtab_unref(a);
        symtab_unref(b);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_lookup_rules),
                cmocka_unit_test(test_dynsym_fallback),
                cmocka_unit_test(test_hostile),
                cmocka_unit_test(test_cache),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
