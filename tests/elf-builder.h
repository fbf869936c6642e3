/* Test helper: crafts ELF images in memory (32/64-bit, either byte order) with chosen program
 * headers, PT_NOTE segments and SHT_NOTE sections, including deliberately broken notes. */
#pragma once

#include <elf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct elf_builder;

/* A finished image; data is malloc()ed with exactly size bytes, so that reading past it is caught
 * by ASan. Offsets describe the layout for tests that patch or mutate the image. */
struct eb_image {
        uint8_t *data;
        size_t size;
        uint8_t elf_class;     /* ELFCLASS32 / ELFCLASS64 */
        uint8_t elf_data;      /* ELFDATA2LSB / ELFDATA2MSB */
        size_t ehsize;
        size_t phoff, phentsize, phnum;
        size_t shoff, shentsize, shnum; /* shnum 0: no section table */
        size_t notes_start, notes_end;  /* the bytes holding all note blobs */
};

enum eb_notes_where {
        EB_NOTES_SEGMENT, /* a PT_NOTE program header */
        EB_NOTES_SECTION, /* an SHT_NOTE section header */
};

/* Aborts on allocation failure: this is test code. */
struct elf_builder *eb_new(uint8_t elf_class, uint8_t elf_data, uint16_t type);
void eb_free(struct elf_builder *b);

/* Adds a program header verbatim (its file contents are not laid out). */
void eb_add_phdr(struct elf_builder *b, uint32_t type, uint64_t offset, uint64_t vaddr, uint64_t filesz,
                 uint64_t memsz, uint32_t flags, uint64_t align);
void eb_add_load(struct elf_builder *b, uint64_t offset, uint64_t vaddr, uint64_t filesz, uint64_t memsz,
                 uint32_t flags);

/* Starts a new block of notes, placed in the file 8-aligned; its header's p_align/sh_addralign is
 * align, and notes added to it are padded to align (4 or 8). Returns the block's index. */
size_t eb_begin_notes(struct elf_builder *b, enum eb_notes_where where, uint64_t align);

/* Appends a well-formed note to the current block: namesz is strlen(name) + 1 (0 for NULL). */
void eb_add_note(struct elf_builder *b, const char *name, uint32_t type, const void *desc, size_t descsz);

/* Appends a note header with arbitrary namesz/descsz followed verbatim by n bytes (no padding). */
void eb_add_note_raw(struct elf_builder *b, uint32_t namesz, uint32_t descsz, uint32_t type, const void *bytes,
                     size_t n);

/* Appends a GNU build ID note ("GNU\0", NT_GNU_BUILD_ID). */
void eb_add_build_id(struct elf_builder *b, const void *id, size_t len);

/* Lays out the image; the builder may be built again after further additions. */
void eb_build(const struct elf_builder *b, struct eb_image *ret);
void eb_image_done(struct eb_image *img);

/* Stores a value at an offset in the image's byte order (bounds are asserted). */
void eb_put16(const struct eb_image *img, size_t offset, uint16_t v);
void eb_put32(const struct eb_image *img, size_t offset, uint32_t v);
void eb_put64(const struct eb_image *img, size_t offset, uint64_t v);
/* A class-sized field: Elf32_Addr/Off/Word or Elf64_Addr/Off/Xword. */
void eb_put_word(const struct eb_image *img, size_t offset, uint64_t v);

/* The offset of an ELF header / program header / section header field for the image's class. */
#define EB_EHDR_FIELD(img, field) \
        ((img)->elf_class == ELFCLASS64 ? offsetof(Elf64_Ehdr, field) : offsetof(Elf32_Ehdr, field))
#define EB_PHDR_FIELD(img, i, field)             \
        ((img)->phoff + (i) * (img)->phentsize + \
         ((img)->elf_class == ELFCLASS64 ? offsetof(Elf64_Phdr, field) : offsetof(Elf32_Phdr, field)))
#define EB_SHDR_FIELD(img, i, field)             \
        ((img)->shoff + (i) * (img)->shentsize + \
         ((img)->elf_class == ELFCLASS64 ? offsetof(Elf64_Shdr, field) : offsetof(Elf32_Shdr, field)))
