/* Byte-level access to hostile ELF data, shared by the ELF readers: bounded reads of a buffer or a file, fields in the file's byte order, the ELF header, header tables. */
#pragma once

#include <elf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Bound on a program or section header table read from a file whose header is hostile. */
#define ELF_TABLE_MAX (64u * 1024u)

/* A memory buffer or a file read with pread(). */
struct elf_source {
        const uint8_t *data;   /* buffer variant, or NULL */
        int fd;                /* fd variant */
        uint64_t size;         /* buffer size, a regular file's size, or UINT64_MAX if unknown */
};

/* Reads up to len bytes at offset into buf. Returns the number of bytes read (fewer than len
 * only at the end of the data, which for a file may be earlier than its size said: the file may
 * have shrunk), or -errno. Both variants end the data at the same place: the size, and the
 * largest file offset (2^63 - 1), so a hostile offset near 2^63 ends the data, not fails. */
ssize_t elf_source_read(const struct elf_source *s, uint64_t offset, size_t len, void *buf);
/* Reads exactly len bytes: 0, 1 if the data ends before that, or -errno. */
int elf_source_read_exact(const struct elf_source *s, uint64_t offset, size_t len, void *buf);
/* The source of a buffer (NULL with size 0: empty). -EINVAL for NULL data with a size. */
int elf_source_from_buffer(const void *data, size_t size, struct elf_source *ret);
/* The source of an open file: its size where it is a regular file. -errno of fstat(). */
int elf_source_from_fd(int fd, struct elf_source *ret);

/* Field access in the file's byte order, independent of the host's and of alignment. */
struct elf_view {
        uint8_t elf_class;
        bool big_endian;
};

uint16_t elf_get16(const struct elf_view *v, const uint8_t *p);
uint32_t elf_get32(const struct elf_view *v, const uint8_t *p);
uint64_t elf_get64(const struct elf_view *v, const uint8_t *p);
/* An address/offset/size-sized field ("Addr", "Off", "Xword"/"Word" depending on the class). */
uint64_t elf_get_word(const struct elf_view *v, const uint8_t *p);

#define ELF_FIELD(v, type, field) \
        ((v)->elf_class == ELFCLASS64 ? offsetof(Elf64_##type, field) : offsetof(Elf32_##type, field))
#define ELF_STRUCT_SIZE(v, type) \
        ((v)->elf_class == ELFCLASS64 ? sizeof(Elf64_##type) : sizeof(Elf32_##type))

struct elf_ehdr {
        uint16_t type;
        uint64_t phoff, shoff;
        uint16_t phentsize, phnum, shentsize, shnum;
};

/* The ELF header: 0, -ENOEXEC when it is not a usable one (magic, class, byte order, size),
 * or -errno. */
int elf_parse_ehdr(const struct elf_source *s, struct elf_view *ret_view, struct elf_ehdr *ret);

/* Reads a header table of count entries of entsize bytes at offset into a new buffer; it must
 * lie within the data and ELF_TABLE_MAX, and entsize be at least min_entsize. Returns 0, 1 if
 * the table is malformed, or -errno. */
int elf_read_table(const struct elf_source *s, uint64_t offset, uint64_t count, uint16_t entsize,
                   size_t min_entsize, uint8_t **ret);

/* The section header table: its entries (ELF_TABLE_MAX at most) in *ret (malloc'd), their
 * count in *ret_count (extended numbering: e_shnum 0 with a table, the count is section 0's
 * sh_size). 0 (count 0 and *ret NULL when there is no table), 1 when it is malformed, -errno. */
int elf_read_sections(const struct elf_source *s, const struct elf_view *v, const struct elf_ehdr *eh,
                      uint8_t **ret, uint64_t *ret_count);
