/* A file's symbol table read with every size bounded and every offset checked, as an address-sorted index. */

#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "elf-bytes.h"
#include "symtab.h"

/* Symbols are read this many at a time: the index keeps only what it uses, so a large table
 * never sits in memory twice. */
#define SYMTAB_CHUNK 4096u
/* A hostile file may nest any number of sized symbols around an address; a lookup looks back
 * over at most this many (real tables nest a few at most), then answers as if none covered it. */
#define SYMTAB_WALK_MAX 256u

struct sym {
        uint64_t value;
        uint64_t size;
        uint64_t max_end;       /* the largest value + size of this entry and every one before it */
        uint32_t name;          /* offset into strings */
};

struct symtab {
        unsigned refs;
        enum symtab_origin origin;
        size_t n;
        struct sym *syms;
        char *strings;          /* NUL-terminated names */
        size_t strings_size;
};

struct section {
        uint32_t type;
        uint32_t link;
        uint64_t offset, size, entsize;
};

static struct section section_at(const struct elf_view *v, const uint8_t *sh) {
        return (struct section) {
                .type = elf_get32(v, sh + ELF_FIELD(v, Shdr, sh_type)),
                .link = elf_get32(v, sh + ELF_FIELD(v, Shdr, sh_link)),
                .offset = elf_get_word(v, sh + ELF_FIELD(v, Shdr, sh_offset)),
                .size = elf_get_word(v, sh + ELF_FIELD(v, Shdr, sh_size)),
                .entsize = elf_get_word(v, sh + ELF_FIELD(v, Shdr, sh_entsize)),
        };
}

static bool within(const struct elf_source *s, uint64_t offset, uint64_t size) {
        uint64_t end;

        return !__builtin_add_overflow(offset, size, &end) && end <= s->size;
}

/* The growing index while one section is read. */
struct builder {
        struct sym *syms;
        size_t n, allocated;
};

static int builder_add(struct builder *b, const struct sym *s) {
        if (b->n == b->allocated) {
                size_t n = b->allocated ? b->allocated * 2 : 256;
                struct sym *p = reallocarray(b->syms, n, sizeof(*p));

                if (!p)
                        return -ENOMEM;
                b->syms = p;
                b->allocated = n;
        }
        b->syms[b->n++] = *s;
        return 0;
}

/* The section headers, for the sections symbols name. */
struct sections {
        const uint8_t *table;
        uint64_t count;
        uint16_t entsize;
};

/* Whether section i is part of the memory image: a symbol of any other (.gnu.warning's, a
 * note's) has a value that is no address. */
static bool section_allocated(const struct elf_view *v, const struct sections *secs, uint16_t i) {
        if (i >= secs->count)
                return false;
        return elf_get_word(v, secs->table + (size_t) i * secs->entsize + ELF_FIELD(v, Shdr, sh_flags)) & SHF_ALLOC;
}

static bool symbol_kept(const struct elf_view *v, const struct sections *secs, const uint8_t *p, const char *strings,
                        size_t strings_size, struct sym *ret) {
        uint8_t info = p[ELF_FIELD(v, Sym, st_info)];
        uint16_t shndx = elf_get16(v, p + ELF_FIELD(v, Sym, st_shndx));
        uint32_t name = elf_get32(v, p + ELF_FIELD(v, Sym, st_name));
        unsigned type = ELF64_ST_TYPE(info);
        size_t len;

        if (type != STT_FUNC && type != STT_GNU_IFUNC && type != STT_OBJECT)
                return false;
        /* SHN_UNDEF, and the reserved indices (SHN_ABS, SHN_COMMON, SHN_XINDEX) are beyond any
         * table this reader takes (ELF_TABLE_MAX): never an allocated section. */
        if (shndx == SHN_UNDEF || !section_allocated(v, secs, shndx))
                return false;
        if (name == 0 || name >= strings_size)
                return false;
        len = strnlen(strings + name, MIN(strings_size - name, (size_t) SYMTAB_NAME_MAX + 1));
        if (len == 0 || len > SYMTAB_NAME_MAX)
                return false;

        uint64_t value = elf_get_word(v, p + ELF_FIELD(v, Sym, st_value));
        uint64_t size = elf_get_word(v, p + ELF_FIELD(v, Sym, st_size));
        /* A symbol reaching past the top of the address space ends there. */
        if (size > UINT64_MAX - value)
                size = UINT64_MAX - value;
        *ret = (struct sym) { .value = value, .size = size, .name = name };
        return true;
}

/* Reads one symbol section and its string table into t. 0 (t->n 0 when the section is
 * unusable or holds nothing kept), -ENOMEM or -errno. */
static int read_section(const struct elf_source *s, const struct elf_view *v, const struct sections *secs,
                        const struct section *sec, struct symtab *t) {
        size_t symsize = ELF_STRUCT_SIZE(v, Sym);
        _cleanup_free_ uint8_t *chunk = NULL;
        _cleanup_free_ char *strings = NULL;
        struct builder b = {};
        struct section str;
        uint64_t n;
        int r;

        if (sec->entsize < symsize || sec->entsize > 256 || sec->size > SYMTAB_SECTION_MAX ||
            !within(s, sec->offset, sec->size) || sec->link == 0 || sec->link >= secs->count)
                return 0;
        str = section_at(v, secs->table + (size_t) sec->link * secs->entsize);
        if (str.type != SHT_STRTAB || str.size == 0 || str.size > SYMTAB_STRINGS_MAX || !within(s, str.offset, str.size))
                return 0;

        /* One byte more, always NUL: a last name without its terminator ends there. */
        strings = malloc((size_t) str.size + 1);
        if (!strings)
                return -ENOMEM;
        r = elf_source_read_exact(s, str.offset, (size_t) str.size, strings);
        if (r != 0)
                return MIN(r, 0);
        strings[str.size] = 0;

        n = sec->size / sec->entsize;
        chunk = malloc((size_t) sec->entsize * SYMTAB_CHUNK);
        if (!chunk)
                return -ENOMEM;
        for (uint64_t i = 0; i < n; i += SYMTAB_CHUNK) {
                size_t k = (size_t) MIN((uint64_t) SYMTAB_CHUNK, n - i);

                r = elf_source_read_exact(s, sec->offset + i * sec->entsize, k * (size_t) sec->entsize, chunk);
                if (r < 0) {
                        free(b.syms);
                        return r;
                }
                if (r > 0)      /* the file shrank: what is missing is not there */
                        break;
                for (size_t j = 0; j < k; j++) {
                        struct sym sym;

                        if (!symbol_kept(v, secs, chunk + j * sec->entsize, strings, (size_t) str.size + 1, &sym))
                                continue;
                        r = builder_add(&b, &sym);
                        if (r < 0) {
                                free(b.syms);
                                return r;
                        }
                }
        }
        if (b.n == 0) {
                free(b.syms);
                return 0;
        }
        t->syms = b.syms;
        t->n = b.n;
        t->strings = TAKE_PTR(strings);
        t->strings_size = (size_t) str.size + 1;
        return 0;
}

static int sym_compare(const void *a, const void *b) {
        const struct sym *x = a, *y = b;

        if (x->value != y->value)
                return x->value < y->value ? -1 : 1;
        if (x->size != y->size)
                return x->size > y->size ? -1 : 1;
        return x->name < y->name ? -1 : x->name > y->name;
}

/* A string table holds much the index does not need (file names, locals of other kinds): the
 * names kept are copied into a pool of their own, where that is smaller (names shared by many
 * symbols could make it larger). */
static int compact_strings(struct symtab *t) {
        size_t total = 0;
        char *pool, *p;

        for (size_t i = 0; i < t->n; i++) {
                total += strlen(t->strings + t->syms[i].name) + 1;
                if (total >= t->strings_size)
                        return 0;
        }
        pool = malloc(MAX(total, (size_t) 1));
        if (!pool)
                return -ENOMEM;
        p = pool;
        for (size_t i = 0; i < t->n; i++) {
                const char *name = t->strings + t->syms[i].name;

                t->syms[i].name = (uint32_t) (p - pool);
                p = stpcpy(p, name) + 1;
        }
        free(t->strings);
        t->strings = pool;
        t->strings_size = total;
        return 0;
}

static int symtab_parse(const struct elf_source *s, struct symtab **ret) {
        _cleanup_free_ uint8_t *table = NULL;
        struct elf_view v;
        struct elf_ehdr eh;
        uint64_t count = 0;
        int r;

        r = elf_parse_ehdr(s, &v, &eh);
        if (r < 0)
                return r;
        r = elf_read_sections(s, &v, &eh, &table, &count);
        if (r < 0)
                return r;
        if (r > 0)
                count = 0;

        struct symtab *t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->refs = 1;

        static const struct {
                uint32_t type;
                enum symtab_origin origin;
        } order[] = { { SHT_SYMTAB, SYMTAB_SYMTAB }, { SHT_DYNSYM, SYMTAB_DYNSYM } };
        for (size_t o = 0; o < ELEMENTSOF(order) && t->n == 0; o++)
                for (uint64_t i = 0; i < count && t->n == 0; i++) {
                        struct section sec = section_at(&v, table + i * eh.shentsize);

                        if (sec.type != order[o].type)
                                continue;
                        r = read_section(s, &v, &(struct sections) { table, count, eh.shentsize }, &sec, t);
                        if (r < 0) {
                                symtab_unref(t);
                                return r;
                        }
                        if (t->n > 0)
                                t->origin = order[o].origin;
                }

        if (t->n > 0) {
                uint64_t max_end = 0;

                qsort(t->syms, t->n, sizeof(*t->syms), sym_compare);
                for (size_t i = 0; i < t->n; i++) {
                        max_end = MAX(max_end, t->syms[i].value + t->syms[i].size);
                        t->syms[i].max_end = max_end;
                }
                r = compact_strings(t);
                if (r < 0) {
                        symtab_unref(t);
                        return r;
                }
                /* The index is final: give back what its growth left over. */
                struct sym *shrunk = reallocarray(t->syms, t->n, sizeof(*t->syms));
                if (shrunk)
                        t->syms = shrunk;
        }
        *ret = t;
        return 0;
}

int symtab_from_buffer(const void *data, size_t size, struct symtab **ret) {
        struct elf_source s;

        if (!ret || elf_source_from_buffer(data, size, &s) < 0)
                return -EINVAL;
        return symtab_parse(&s, ret);
}

int symtab_from_fd(int fd, struct symtab **ret) {
        struct elf_source s;
        int r;

        if (!ret)
                return -EINVAL;
        r = elf_source_from_fd(fd, &s);
        if (r < 0)
                return r;
        return symtab_parse(&s, ret);
}

struct symtab *symtab_ref(struct symtab *t) {
        if (t)
                __atomic_add_fetch(&t->refs, 1, __ATOMIC_RELAXED);
        return t;
}

struct symtab *symtab_unref(struct symtab *t) {
        if (!t || __atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) > 0)
                return NULL;
        free(t->syms);
        free(t->strings);
        free(t);
        return NULL;
}

enum symtab_origin symtab_origin(const struct symtab *t) {
        return t->origin;
}

size_t symtab_count(const struct symtab *t) {
        return t->n;
}

size_t symtab_memory(const struct symtab *t) {
        return sizeof(*t) + t->n * sizeof(*t->syms) + t->strings_size;
}

int symtab_lookup(const struct symtab *t, uint64_t vaddr, struct symtab_match *ret) {
        size_t lo = 0, hi = t->n, last;

        /* The first entry above vaddr: everything before it starts at or below. */
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (t->syms[mid].value <= vaddr)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        if (lo == 0)
                return 0;
        last = lo - 1;

        /* Backwards: the first sized entry covering vaddr starts last; once no entry at or
         * before j reaches past vaddr (max_end), none covers it. */
        for (size_t j = last + 1, steps = 0; j-- > 0 && steps < SYMTAB_WALK_MAX && t->syms[j].max_end > vaddr; steps++) {
                const struct sym *s = &t->syms[j];

                if (s->size > 0 && vaddr - s->value < s->size) {
                        *ret = (struct symtab_match) {
                                .name = t->strings + s->name,
                                .value = s->value,
                                .offset = vaddr - s->value,
                        };
                        return 1;
                }
        }

        /* Sorted by size within one value, largest first: the first of the nearest value's
         * entries tells whether all of them have size 0. */
        size_t first = last;
        while (first > 0 && t->syms[first - 1].value == t->syms[last].value)
                first--;
        if (t->syms[first].size > 0)
                return 0;
        *ret = (struct symtab_match) {
                .name = t->strings + t->syms[first].name,
                .value = t->syms[first].value,
                .offset = vaddr - t->syms[first].value,
                .size_unknown = true,
        };
        return 1;
}
