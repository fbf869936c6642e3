/* Reads what symbolizers need from an ELF file: its GNU build ID and PT_LOAD table; every offset and size in it is hostile. */

#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "elf-bytes.h"
#include "elf-reader.h"

/* Bounds on what is read from a file whose header fields are all hostile. */
#define ELF_NOTES_MAX (1024u * 1024u)      /* all note segments/sections together */
#define ELF_PAGE_SIZE UINT64_C(4096)

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
                uint32_t namesz = elf_get32(v, p + pos), descsz = elf_get32(v, p + pos + 4), type = elf_get32(v, p + pos + 8);
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
static int scan_notes(const struct elf_source *s, const struct elf_view *v, uint64_t offset, uint64_t size,
                      uint64_t alignment, size_t *budget, struct elf_info *info) {
        if (size == 0 || *budget == 0 || offset >= s->size)
                return 0;

        size_t len = (size_t) MIN(MIN(size, s->size - offset), (uint64_t) *budget);
        _cleanup_free_ uint8_t *buf = malloc(len);
        if (!buf)
                return -ENOMEM;

        *budget -= len;
        ssize_t n = elf_source_read(s, offset, len, buf);
        if (n < 0)
                return (int) n;

        return find_build_id(v, buf, (uint64_t) n, alignment, info);
}

/* SHT_NOTE sections, the fallback when no PT_NOTE segment carries a build ID. A malformed section
 * table just means no build ID. e_shnum == 0 with a table present is extended numbering (the count
 * is section 0's sh_size). */
static int scan_section_notes(const struct elf_source *s, const struct elf_view *v, const struct elf_ehdr *eh,
                              size_t *budget, struct elf_info *info) {
        _cleanup_free_ uint8_t *table = NULL;
        uint64_t count;
        int r;

        r = elf_read_sections(s, v, eh, &table, &count);
        if (r != 0)
                return r < 0 ? r : 0;

        for (uint64_t i = 0; i < count; i++) {
                const uint8_t *sh = table + i * eh->shentsize;

                if (elf_get32(v, sh + ELF_FIELD(v, Shdr, sh_type)) != SHT_NOTE)
                        continue;
                r = scan_notes(s, v, elf_get_word(v, sh + ELF_FIELD(v, Shdr, sh_offset)),
                               elf_get_word(v, sh + ELF_FIELD(v, Shdr, sh_size)),
                               elf_get_word(v, sh + ELF_FIELD(v, Shdr, sh_addralign)), budget, info);
                if (r != 0)
                        return r;
        }
        return 0;
}

/* The parsing core. e_phnum == PN_XNUM (the real count in section 0's sh_info) is treated as a
 * malformed header: such a count is >= 0xffff, so the table would exceed ELF_TABLE_MAX anyway.
 * An unusable program header table (entries smaller than Elf{32,64}_Phdr, outside the data or
 * larger than ELF_TABLE_MAX) makes the header unusable too: -ENOEXEC. */
static int elf_info_parse(const struct elf_source *s, struct elf_info *ret) {
        struct elf_view v = {};
        struct elf_ehdr eh = {};
        int r;

        r = elf_parse_ehdr(s, &v, &eh);
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
                r = elf_read_table(s, eh.phoff, eh.phnum, eh.phentsize, ELF_STRUCT_SIZE(&v, Phdr), &phdrs);
                if (r != 0)
                        return r < 0 ? r : -ENOEXEC;
        }

        size_t budget = ELF_NOTES_MAX;
        bool found = false;

        for (size_t i = 0; i < eh.phnum; i++) {
                const uint8_t *ph = phdrs + i * eh.phentsize;
                uint32_t p_type = elf_get32(&v, ph + ELF_FIELD(&v, Phdr, p_type));
                uint64_t offset = elf_get_word(&v, ph + ELF_FIELD(&v, Phdr, p_offset));
                uint64_t filesz = elf_get_word(&v, ph + ELF_FIELD(&v, Phdr, p_filesz));

                if (p_type == PT_LOAD && info.n_loads < ELF_LOADS_MAX)
                        info.loads[info.n_loads++] = (struct elf_load) {
                                .offset = offset,
                                .vaddr = elf_get_word(&v, ph + ELF_FIELD(&v, Phdr, p_vaddr)),
                                .filesz = filesz,
                                .memsz = elf_get_word(&v, ph + ELF_FIELD(&v, Phdr, p_memsz)),
                                .flags = elf_get32(&v, ph + ELF_FIELD(&v, Phdr, p_flags)),
                        };
                else if (p_type == PT_NOTE && !found) {
                        r = scan_notes(s, &v, offset, filesz, elf_get_word(&v, ph + ELF_FIELD(&v, Phdr, p_align)),
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
        struct elf_source s;

        if (!ret || elf_source_from_buffer(data, size, &s) < 0)
                return -EINVAL;
        return elf_info_parse(&s, ret);
}

int elf_info_from_fd(int fd, struct elf_info *ret) {
        struct elf_source s;
        int r;

        if (!ret)
                return -EINVAL;
        r = elf_source_from_fd(fd, &s);
        if (r < 0)
                return r;
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
