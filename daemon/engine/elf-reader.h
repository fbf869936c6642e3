/* Reads what symbolizers need from an ELF file: its GNU build ID and PT_LOAD table; every offset and size in it is hostile. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mapping.h"

/* Binaries have 2-6 PT_LOADs; more are kept up to this bound (the rest are ignored). */
#define ELF_LOADS_MAX 32

struct elf_load {
        uint64_t offset;   /* p_offset */
        uint64_t vaddr;    /* p_vaddr */
        uint64_t filesz;   /* p_filesz */
        uint64_t memsz;    /* p_memsz */
        uint32_t flags;    /* p_flags (PF_R/PF_W/PF_X) */
};

struct elf_info {
        uint8_t elf_class;  /* ELFCLASS32 or ELFCLASS64; 0: not an ELF file */
        uint16_t type;      /* e_type: ET_EXEC, ET_DYN, ... */
        uint8_t build_id_len;
        uint8_t build_id[MAPPING_BUILD_ID_MAX];
        uint8_t n_loads;
        struct elf_load loads[ELF_LOADS_MAX];
};

/* Parses an ELF image held in memory (tests and fuzzing; the file reader shares the code).
 * 32/64-bit, either byte order. The build ID comes from NT_GNU_BUILD_ID notes ("GNU\0"
 * owner) in PT_NOTE segments, else in SHT_NOTE sections; build IDs longer than
 * MAPPING_BUILD_ID_MAX or empty are ignored. Returns 0 (build_id_len 0 when there is none,
 * including when notes are malformed), or -ENOEXEC when the ELF header itself is not
 * usable. *ret is untouched on failure.
 * "Not usable" includes the program header table: e_phentsize smaller than Elf{32,64}_Phdr, a
 * table outside the data or larger than 64 KiB, and e_phnum == PN_XNUM (extended numbering
 * implies >= 0xffff entries, beyond that bound) all give -ENOEXEC; e_phnum 0 is fine (no loads).
 * Note fields are 8-byte aligned in a PT_NOTE/SHT_NOTE whose alignment is 8, else 4-byte; a note
 * that does not fit in its segment/section ends the scan of that one. A malformed section table
 * only means no build ID from sections (e_shnum 0 with e_shoff set: the count is section 0's
 * sh_size). -EINVAL for a NULL ret or NULL data with a nonzero size. */
int elf_info_from_buffer(const void *data, size_t size, struct elf_info *ret);

/* The same, reading an open file with pread(): only the headers, the program/section header
 * tables (each at most 64 KiB) and the notes (at most 1 MiB in all) are read. -ENOEXEC as
 * above, or -errno of a failing read. Reads may be short (a truncated or shrinking file): what
 * is missing counts as not being there. */
int elf_info_from_fd(int fd, struct elf_info *ret);

/* The ELF virtual address of a file offset: from the PT_LOAD whose file range
 * [p_offset, p_offset + p_filesz) contains it, else from one whose page-rounded (4 KiB) file
 * range does (the first such PT_LOAD in table order, in each pass); vaddr = file_offset -
 * p_offset + p_vaddr. -ENOENT when no PT_LOAD covers it, or when the result would wrap around
 * 0 or 2^64. *ret_vaddr is untouched on failure. */
int elf_info_vaddr(const struct elf_info *info, uint64_t file_offset, uint64_t *ret_vaddr);
