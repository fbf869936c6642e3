/* Reads what symbolizers need from an ELF file: its GNU build ID and PT_LOAD table; every offset and size in it is hostile. */

#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "elf-reader.h"

/* Bounds on what is read from a file whose header fields are all hostile. */
#define ELF_TABLE_MAX (64u * 1024u)        /* a program or section header table */
#define ELF_NOTES_MAX (1024u * 1024u)      /* all note segments/sections together */
#define ELF_PAGE_SIZE UINT64_C(4096)

/* Both public entry points read through this: a memory buffer or a file read with pread().
 * Everything below works only in terms of source_read(), so there is one parsing core. */
struct source {
        const uint8_t *data;   /* buffer variant, or NULL */
        int fd;                /* fd variant */
        uint64_t size;         /* buffer size, a regular file's size, or UINT64_MAX if unknown */
};

/* Reads up to len bytes at offset into buf. Returns the number of bytes read (fewer than len
 * only at the end of the data, which for a file may be earlier than its size said: the file may
 * have shrunk), or -errno.
 * Both variants end the data at the same place: the size, and the largest file offset (an off_t,
 * 2^63 - 1). The kernel refuses a pread() whose offset + count passes that with EINVAL, where a
 * buffer simply has no bytes there, so a hostile offset near 2^63 must end the data, not fail. */
static ssize_t source_read(const struct source *s, uint64_t offset, size_t len, void *buf) {
        uint64_t end = MIN(s->size, (uint64_t) INT64_MAX);

        if (offset >= end)
                return 0;
        len = (size_t) MIN((uint64_t) len, end - offset);

        if (s->data) {
                memcpy(buf, s->data + offset, len);
                return (ssize_t) len;
        }

        /* offset + len <= INT64_MAX: no position below overflows an off_t. */
        size_t done = 0;
        while (done < len) {
                ssize_t r = RETRY_EINTR(pread(s->fd, (uint8_t *) buf + done, len - done, (off_t) (offset + done)));
                if (r < 0)
                        return -errno;
                if (r == 0)
                        break;
                done += (size_t) r;
        }
        return (ssize_t) done;
}

/* Reads exactly len bytes: 0, 1 if the data ends before that, or -errno. */
static int source_read_exact(const struct source *s, uint64_t offset, size_t len, void *buf) {
        ssize_t r = source_read(s, offset, len, buf);
        if (r < 0)
                return (int) r;
        return (size_t) r == len ? 0 : 1;
}

/* Field access in the file's byte order, independent of the host's and of alignment. */
struct elf_view {
        uint8_t elf_class;
        bool big_endian;
};

static uint16_t get16(const struct elf_view *v, const uint8_t *p) {
        if (v->big_endian)
                return (uint16_t) ((unsigned) p[0] << 8 | p[1]);
        return (uint16_t) ((unsigned) p[1] << 8 | p[0]);
}

static uint32_t get32(const struct elf_view *v, const uint8_t *p) {
        if (v->big_endian)
                return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
        return (uint32_t) p[3] << 24 | (uint32_t) p[2] << 16 | (uint32_t) p[1] << 8 | p[0];
}

static uint64_t get64(const struct elf_view *v, const uint8_t *p) {
        uint64_t hi = get32(v, v->big_endian ? p : p + 4), lo = get32(v, v->big_endian ? p + 4 : p);
        return hi << 32 | lo;
}

/* An address/offset/size-sized field ("Addr", "Off", "Xword"/"Word" depending on the class). */
static uint64_t get_word(const struct elf_view *v, const uint8_t *p) {
        return v->elf_class == ELFCLASS64 ? get64(v, p) : get32(v, p);
}

#define FIELD(v, type, field) \
        ((v)->elf_class == ELFCLASS64 ? offsetof(Elf64_##type, field) : offsetof(Elf32_##type, field))
#define STRUCT_SIZE(v, type) \
        ((v)->elf_class == ELFCLASS64 ? sizeof(Elf64_##type) : sizeof(Elf32_##type))

struct ehdr {
        uint16_t type;
        uint64_t phoff, shoff;
        uint16_t phentsize, phnum, shentsize, shnum;
};

static int parse_ehdr(const struct source *s, struct elf_view *ret_view, struct ehdr *ret) {
        uint8_t buf[sizeof(Elf64_Ehdr)];
        ssize_t n = source_read(s, 0, sizeof(buf), buf);
        if (n < 0)
                return (int) n;
        if ((size_t) n < EI_NIDENT || memcmp(buf, ELFMAG, SELFMAG) != 0)
                return -ENOEXEC;

        struct elf_view v = { .elf_class = buf[EI_CLASS] };
        if (v.elf_class != ELFCLASS32 && v.elf_class != ELFCLASS64)
                return -ENOEXEC;
        if (buf[EI_DATA] == ELFDATA2MSB)
                v.big_endian = true;
        else if (buf[EI_DATA] != ELFDATA2LSB)
                return -ENOEXEC;
        if ((size_t) n < STRUCT_SIZE(&v, Ehdr))
                return -ENOEXEC;

        *ret = (struct ehdr) {
                .type = get16(&v, buf + FIELD(&v, Ehdr, e_type)),
                .phoff = get_word(&v, buf + FIELD(&v, Ehdr, e_phoff)),
                .shoff = get_word(&v, buf + FIELD(&v, Ehdr, e_shoff)),
                .phentsize = get16(&v, buf + FIELD(&v, Ehdr, e_phentsize)),
                .phnum = get16(&v, buf + FIELD(&v, Ehdr, e_phnum)),
                .shentsize = get16(&v, buf + FIELD(&v, Ehdr, e_shentsize)),
                .shnum = get16(&v, buf + FIELD(&v, Ehdr, e_shnum)),
        };
        *ret_view = v;
        return 0;
}

/* Reads a header table of count entries of entsize bytes at offset into a new buffer; it must
 * lie within the data and ELF_TABLE_MAX. Returns 0, 1 if the table is malformed, or -errno. */
static int read_table(const struct source *s, uint64_t offset, uint64_t count, uint16_t entsize,
                      size_t min_entsize, uint8_t **ret) {
        uint64_t len, end;

        if (entsize < min_entsize)
                return 1;
        if (__builtin_mul_overflow(count, (uint64_t) entsize, &len) || len > ELF_TABLE_MAX)
                return 1;
        if (__builtin_add_overflow(offset, len, &end) || end > s->size)
                return 1;

        _cleanup_free_ uint8_t *buf = malloc(len > 0 ? (size_t) len : 1);
        if (!buf)
                return -ENOMEM;
        int r = source_read_exact(s, offset, (size_t) len, buf);
        if (r != 0)
                return r;
        *ret = TAKE_PTR(buf);
        return 0;
}

static uint64_t note_align(uint64_t alignment) {
        /* gABI: 4-byte aligned note fields, 8-byte ones in segments/sections aligned to 8. */
        return alignment == 8 ? 8 : 4;
}

/* Rounds x up to a multiple of a (a power of two); false on overflow. */
static bool align_up(uint64_t x, uint64_t a, uint64_t *ret) {
        uint64_t t;
        if (__builtin_add_overflow(x, a - 1, &t))
                return false;
        *ret = t & ~(a - 1);
        return true;
}

/* Scans a block of notes for a GNU build ID. A note that does not fit ends the scan. */
static bool find_build_id(const struct elf_view *v, const uint8_t *p, uint64_t len, uint64_t alignment,
                          struct elf_info *info) {
        uint64_t a = note_align(alignment), pos = 0;

        /* Every position below is <= len, and len fits in memory, so additions of values < len
         * cannot overflow; the 32-bit sizes are the hostile part and are compared before use. */
        while (len - pos >= 12) {
                uint32_t namesz = get32(v, p + pos), descsz = get32(v, p + pos + 4), type = get32(v, p + pos + 8);
                uint64_t name_off = pos + 12, desc_off, desc_end, next;

                if (namesz > len - name_off)
                        break;
                if (!align_up(name_off + namesz, a, &desc_off) || desc_off > len)
                        break;
                if (descsz > len - desc_off)
                        break;
                desc_end = desc_off + descsz;

                if (type == NT_GNU_BUILD_ID && namesz == 4 && memcmp(p + name_off, ELF_NOTE_GNU, 4) == 0 &&
                    descsz >= 1 && descsz <= MAPPING_BUILD_ID_MAX) {
                        memcpy(info->build_id, p + desc_off, descsz);
                        info->build_id_len = (uint8_t) descsz;
                        return true;
                }

                if (!align_up(desc_end, a, &next) || next >= len)
                        break;
                pos = next;
        }
        return false;
}

/* Reads the notes of one segment or section (bounded by what is left of *budget and by the data)
 * and scans them. Returns 1 when a build ID was found, 0 when not, or -errno. */
static int scan_notes(const struct source *s, const struct elf_view *v, uint64_t offset, uint64_t size,
                      uint64_t alignment, size_t *budget, struct elf_info *info) {
        if (size == 0 || *budget == 0 || offset >= s->size)
                return 0;

        size_t len = (size_t) MIN(MIN(size, s->size - offset), (uint64_t) *budget);
        _cleanup_free_ uint8_t *buf = malloc(len);
        if (!buf)
                return -ENOMEM;

        *budget -= len;
        ssize_t n = source_read(s, offset, len, buf);
        if (n < 0)
                return (int) n;

        return find_build_id(v, buf, (uint64_t) n, alignment, info);
}

/* SHT_NOTE sections, the fallback when no PT_NOTE segment carries a build ID. A malformed section
 * table just means no build ID. e_shnum == 0 with a table present is extended numbering (the count
 * is section 0's sh_size). */
static int scan_section_notes(const struct source *s, const struct elf_view *v, const struct ehdr *eh,
                              size_t *budget, struct elf_info *info) {
        size_t shdr_size = STRUCT_SIZE(v, Shdr);
        uint64_t count = eh->shnum;
        int r;

        if (eh->shoff == 0)
                return 0;

        if (count == 0) {
                uint8_t sh0[sizeof(Elf64_Shdr)];

                if (eh->shentsize < shdr_size)
                        return 0;
                r = source_read_exact(s, eh->shoff, shdr_size, sh0);
                if (r != 0)
                        return r < 0 ? r : 0;
                count = get_word(v, sh0 + FIELD(v, Shdr, sh_size));
                if (count == 0)
                        return 0;
        }

        _cleanup_free_ uint8_t *table = NULL;
        r = read_table(s, eh->shoff, count, eh->shentsize, shdr_size, &table);
        if (r != 0)
                return r < 0 ? r : 0;

        for (uint64_t i = 0; i < count; i++) {
                const uint8_t *sh = table + i * eh->shentsize;

                if (get32(v, sh + FIELD(v, Shdr, sh_type)) != SHT_NOTE)
                        continue;
                r = scan_notes(s, v, get_word(v, sh + FIELD(v, Shdr, sh_offset)),
                               get_word(v, sh + FIELD(v, Shdr, sh_size)),
                               get_word(v, sh + FIELD(v, Shdr, sh_addralign)), budget, info);
                if (r != 0)
                        return r;
        }
        return 0;
}

/* The parsing core. e_phnum == PN_XNUM (the real count in section 0's sh_info) is treated as a
 * malformed header: such a count is >= 0xffff, so the table would exceed ELF_TABLE_MAX anyway.
 * An unusable program header table (entries smaller than Elf{32,64}_Phdr, outside the data or
 * larger than ELF_TABLE_MAX) makes the header unusable too: -ENOEXEC. */
static int elf_info_parse(const struct source *s, struct elf_info *ret) {
        struct elf_view v = {};
        struct ehdr eh = {};
        int r;

        r = parse_ehdr(s, &v, &eh);
        if (r < 0)
                return r;

        struct elf_info info = {
                .elf_class = v.elf_class,
                .type = eh.type,
        };

        if (eh.phnum == PN_XNUM)
                return -ENOEXEC;

        _cleanup_free_ uint8_t *phdrs = NULL;
        if (eh.phnum > 0) {
                r = read_table(s, eh.phoff, eh.phnum, eh.phentsize, STRUCT_SIZE(&v, Phdr), &phdrs);
                if (r != 0)
                        return r < 0 ? r : -ENOEXEC;
        }

        size_t budget = ELF_NOTES_MAX;
        bool found = false;

        for (size_t i = 0; i < eh.phnum; i++) {
                const uint8_t *ph = phdrs + i * eh.phentsize;
                uint32_t p_type = get32(&v, ph + FIELD(&v, Phdr, p_type));
                uint64_t offset = get_word(&v, ph + FIELD(&v, Phdr, p_offset));
                uint64_t filesz = get_word(&v, ph + FIELD(&v, Phdr, p_filesz));

                if (p_type == PT_LOAD && info.n_loads < ELF_LOADS_MAX)
                        info.loads[info.n_loads++] = (struct elf_load) {
                                .offset = offset,
                                .vaddr = get_word(&v, ph + FIELD(&v, Phdr, p_vaddr)),
                                .filesz = filesz,
                                .memsz = get_word(&v, ph + FIELD(&v, Phdr, p_memsz)),
                                .flags = get32(&v, ph + FIELD(&v, Phdr, p_flags)),
                        };
                else if (p_type == PT_NOTE && !found) {
                        r = scan_notes(s, &v, offset, filesz, get_word(&v, ph + FIELD(&v, Phdr, p_align)),
                                       &budget, &info);
                        if (r < 0)
                                return r;
                        found = r > 0;
                }
        }

        if (!found) {
                r = scan_section_notes(s, &v, &eh, &budget, &info);
                if (r < 0)
                        return r;
        }

        *ret = info;
        return 0;
}

int elf_info_from_buffer(const void *data, size_t size, struct elf_info *ret) {
        static const uint8_t empty[1];

        if (!ret || (!data && size > 0))
                return -EINVAL;

        struct source s = {
                .data = data ?: empty,
                .fd = -1,
                .size = data ? size : 0,
        };
        return elf_info_parse(&s, ret);
}

int elf_info_from_fd(int fd, struct elf_info *ret) {
        struct stat st;

        if (!ret)
                return -EINVAL;
        if (fstat(fd, &st) < 0)
                return -errno;

        struct source s = {
                .fd = fd,
                /* Only a regular file's size means something; elsewhere reads find the end. */
                .size = S_ISREG(st.st_mode) && st.st_size >= 0 ? (uint64_t) st.st_size : UINT64_MAX,
        };
        return elf_info_parse(&s, ret);
}

static bool load_vaddr(const struct elf_load *l, uint64_t file_offset, uint64_t *ret) {
        uint64_t v;

        if (file_offset >= l->offset) {
                if (__builtin_add_overflow(l->vaddr, file_offset - l->offset, &v))
                        return false;
        } else if (__builtin_sub_overflow(l->vaddr, l->offset - file_offset, &v))
                return false;
        *ret = v;
        return true;
}

int elf_info_vaddr(const struct elf_info *info, uint64_t file_offset, uint64_t *ret_vaddr) {
        if (!info || !ret_vaddr)
                return -EINVAL;

        size_t n = MIN((size_t) info->n_loads, (size_t) ELF_LOADS_MAX);
        uint64_t v;

        /* Exact: p_offset <= file_offset < p_offset + p_filesz, without computing the end. */
        for (size_t i = 0; i < n; i++) {
                const struct elf_load *l = &info->loads[i];

                if (file_offset >= l->offset && file_offset - l->offset < l->filesz &&
                    load_vaddr(l, file_offset, &v)) {
                        *ret_vaddr = v;
                        return 0;
                }
        }

        /* Page-rounded: [p_offset & ~4095, roundup(p_offset + p_filesz, 4096)), the range mmap()
         * actually maps; an end that overflows is clamped to UINT64_MAX. */
        for (size_t i = 0; i < n; i++) {
                const struct elf_load *l = &info->loads[i];
                uint64_t start = l->offset & ~(ELF_PAGE_SIZE - 1), end;

                if (__builtin_add_overflow(l->offset, l->filesz, &end) || !align_up(end, ELF_PAGE_SIZE, &end))
                        end = UINT64_MAX;
                if (file_offset >= start && file_offset < end && load_vaddr(l, file_offset, &v)) {
                        *ret_vaddr = v;
                        return 0;
                }
        }

        return -ENOENT;
}
