/* Byte-level access to hostile ELF data, shared by the ELF readers: bounded reads of a buffer or a file, fields in the file's byte order, the ELF header, header tables. */

#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "elf-bytes.h"

/* Reads up to len bytes at offset into buf. Returns the number of bytes read (fewer than len
 * only at the end of the data, which for a file may be earlier than its size said: the file may
 * have shrunk), or -errno.
 * Both variants end the data at the same place: the size, and the largest file offset (an off_t,
 * 2^63 - 1). The kernel refuses a pread() whose offset + count passes that with EINVAL, where a
 * buffer simply has no bytes there, so a hostile offset near 2^63 must end the data, not fail. */
ssize_t elf_source_read(const struct elf_source *s, uint64_t offset, size_t len, void *buf) {
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
int elf_source_read_exact(const struct elf_source *s, uint64_t offset, size_t len, void *buf) {
        ssize_t r = elf_source_read(s, offset, len, buf);
        if (r < 0)
                return (int) r;
        return (size_t) r == len ? 0 : 1;
}

uint16_t elf_get16(const struct elf_view *v, const uint8_t *p) {
        if (v->big_endian)
                return (uint16_t) ((unsigned) p[0] << 8 | p[1]);
        return (uint16_t) ((unsigned) p[1] << 8 | p[0]);
}

uint32_t elf_get32(const struct elf_view *v, const uint8_t *p) {
        if (v->big_endian)
                return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
        return (uint32_t) p[3] << 24 | (uint32_t) p[2] << 16 | (uint32_t) p[1] << 8 | p[0];
}

uint64_t elf_get64(const struct elf_view *v, const uint8_t *p) {
        uint64_t hi = elf_get32(v, v->big_endian ? p : p + 4), lo = elf_get32(v, v->big_endian ? p + 4 : p);
        return hi << 32 | lo;
}

uint64_t elf_get_word(const struct elf_view *v, const uint8_t *p) {
        return v->elf_class == ELFCLASS64 ? elf_get64(v, p) : elf_get32(v, p);
}

int elf_parse_ehdr(const struct elf_source *s, struct elf_view *ret_view, struct elf_ehdr *ret) {
        uint8_t buf[sizeof(Elf64_Ehdr)];
        ssize_t n = elf_source_read(s, 0, sizeof(buf), buf);
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
        if ((size_t) n < ELF_STRUCT_SIZE(&v, Ehdr))
                return -ENOEXEC;

        *ret = (struct elf_ehdr) {
                .type = elf_get16(&v, buf + ELF_FIELD(&v, Ehdr, e_type)),
                .phoff = elf_get_word(&v, buf + ELF_FIELD(&v, Ehdr, e_phoff)),
                .shoff = elf_get_word(&v, buf + ELF_FIELD(&v, Ehdr, e_shoff)),
                .phentsize = elf_get16(&v, buf + ELF_FIELD(&v, Ehdr, e_phentsize)),
                .phnum = elf_get16(&v, buf + ELF_FIELD(&v, Ehdr, e_phnum)),
                .shentsize = elf_get16(&v, buf + ELF_FIELD(&v, Ehdr, e_shentsize)),
                .shnum = elf_get16(&v, buf + ELF_FIELD(&v, Ehdr, e_shnum)),
        };
        *ret_view = v;
        return 0;
}

/* Reads a header table of count entries of entsize bytes at offset into a new buffer; it must
 * lie within the data and ELF_TABLE_MAX. Returns 0, 1 if the table is malformed, or -errno. */
int elf_read_table(const struct elf_source *s, uint64_t offset, uint64_t count, uint16_t entsize,
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
        int r = elf_source_read_exact(s, offset, (size_t) len, buf);
        if (r != 0)
                return r;
        *ret = TAKE_PTR(buf);
        return 0;
}

int elf_source_from_buffer(const void *data, size_t size, struct elf_source *ret) {
        static const uint8_t empty[1];

        if (!data && size > 0)
                return -EINVAL;
        *ret = (struct elf_source) {
                .data = data ?: empty,
                .fd = -1,
                .size = data ? size : 0,
        };
        return 0;
}

int elf_source_from_fd(int fd, struct elf_source *ret) {
        struct stat st;

        if (fstat(fd, &st) < 0)
                return -errno;
        *ret = (struct elf_source) {
                .fd = fd,
                /* Only a regular file's size means something; elsewhere reads find the end. */
                .size = S_ISREG(st.st_mode) && st.st_size >= 0 ? (uint64_t) st.st_size : UINT64_MAX,
        };
        return 0;
}

int elf_read_sections(const struct elf_source *s, const struct elf_view *v, const struct elf_ehdr *eh,
                      uint8_t **ret, uint64_t *ret_count) {
        size_t shdr_size = ELF_STRUCT_SIZE(v, Shdr);
        uint64_t count = eh->shnum;
        int r;

        if (eh->shoff == 0) {
                *ret = NULL;
                *ret_count = 0;
                return 0;
        }
        if (count == 0) {
                uint8_t sh0[sizeof(Elf64_Shdr)];

                if (eh->shentsize < shdr_size)
                        return 1;
                r = elf_source_read_exact(s, eh->shoff, shdr_size, sh0);
                if (r != 0)
                        return r;
                count = elf_get_word(v, sh0 + ELF_FIELD(v, Shdr, sh_size));
                if (count == 0) {
                        *ret = NULL;
                        *ret_count = 0;
                        return 0;
                }
        }
        r = elf_read_table(s, eh->shoff, count, eh->shentsize, shdr_size, ret);
        if (r != 0)
                return r;
        *ret_count = count;
        return 0;
}
