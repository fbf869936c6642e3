#include <assert.h>
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "elf-builder.h"

struct eb_phdr {
        uint32_t type, flags;
        uint64_t offset, vaddr, filesz, memsz, align;
        size_t block; /* the note block laid out for it, or SIZE_MAX */
};

struct eb_block {
        enum eb_notes_where where;
        uint64_t align;
        uint8_t *bytes;
        size_t len, allocated;
};

struct elf_builder {
        uint8_t elf_class, elf_data;
        uint16_t type;
        struct eb_phdr *phdrs;
        size_t n_phdrs;
        struct eb_block *blocks;
        size_t n_blocks;
};

static void *xrealloc(void *p, size_t n) {
        p = realloc(p, n ? n : 1);
        if (!p) {
                fprintf(stderr, "elf-builder: out of memory\n");
                abort();
        }
        return p;
}

struct elf_builder *eb_new(uint8_t elf_class, uint8_t elf_data, uint16_t type) {
        assert(elf_class == ELFCLASS32 || elf_class == ELFCLASS64);
        assert(elf_data == ELFDATA2LSB || elf_data == ELFDATA2MSB);

        struct elf_builder *b = xrealloc(NULL, sizeof(*b));
        *b = (struct elf_builder) { .elf_class = elf_class, .elf_data = elf_data, .type = type };
        return b;
}

void eb_free(struct elf_builder *b) {
        if (!b)
                return;
        for (size_t i = 0; i < b->n_blocks; i++)
                free(b->blocks[i].bytes);
        free(b->blocks);
        free(b->phdrs);
        free(b);
}

static void push_phdr(struct elf_builder *b, struct eb_phdr p) {
        b->phdrs = xrealloc(b->phdrs, (b->n_phdrs + 1) * sizeof(*b->phdrs));
        b->phdrs[b->n_phdrs++] = p;
}

void eb_add_phdr(struct elf_builder *b, uint32_t type, uint64_t offset, uint64_t vaddr, uint64_t filesz,
                 uint64_t memsz, uint32_t flags, uint64_t align) {
        push_phdr(b, (struct eb_phdr) {
                .type = type, .flags = flags, .offset = offset, .vaddr = vaddr,
                .filesz = filesz, .memsz = memsz, .align = align, .block = SIZE_MAX,
        });
}

void eb_add_load(struct elf_builder *b, uint64_t offset, uint64_t vaddr, uint64_t filesz, uint64_t memsz,
                 uint32_t flags) {
        eb_add_phdr(b, PT_LOAD, offset, vaddr, filesz, memsz, flags, 0x1000);
}

size_t eb_begin_notes(struct elf_builder *b, enum eb_notes_where where, uint64_t align) {
        b->blocks = xrealloc(b->blocks, (b->n_blocks + 1) * sizeof(*b->blocks));
        b->blocks[b->n_blocks] = (struct eb_block) { .where = where, .align = align };
        if (where == EB_NOTES_SEGMENT)
                push_phdr(b, (struct eb_phdr) { .type = PT_NOTE, .flags = PF_R, .align = align, .block = b->n_blocks });
        return b->n_blocks++;
}

static void store(uint8_t elf_data, uint8_t *p, uint64_t v, size_t width) {
        for (size_t i = 0; i < width; i++) {
                size_t shift = elf_data == ELFDATA2MSB ? (width - 1 - i) * 8 : i * 8;
                p[i] = (uint8_t) (v >> shift);
        }
}

static void block_append(struct eb_block *k, const void *p, size_t n) {
        if (k->len + n > k->allocated) {
                k->allocated = (k->len + n) * 2;
                k->bytes = xrealloc(k->bytes, k->allocated);
        }
        if (n > 0)
                memcpy(k->bytes + k->len, p, n);
        k->len += n;
}

static void block_pad(struct eb_block *k, size_t align) {
        static const uint8_t zeros[8];
        size_t a = align == 8 ? 8 : 4;
        block_append(k, zeros, (a - k->len % a) % a);
}

static struct eb_block *current_block(struct elf_builder *b) {
        assert(b->n_blocks > 0);
        return &b->blocks[b->n_blocks - 1];
}

static void note_header(struct elf_builder *b, uint32_t namesz, uint32_t descsz, uint32_t type) {
        uint8_t h[12];
        store(b->elf_data, h, namesz, 4);
        store(b->elf_data, h + 4, descsz, 4);
        store(b->elf_data, h + 8, type, 4);
        block_append(current_block(b), h, sizeof(h));
}

void eb_add_note(struct elf_builder *b, const char *name, uint32_t type, const void *desc, size_t descsz) {
        struct eb_block *k = current_block(b);
        size_t namesz = name ? strlen(name) + 1 : 0;

        note_header(b, (uint32_t) namesz, (uint32_t) descsz, type);
        block_append(k, name, namesz);
        block_pad(k, k->align);
        block_append(k, desc, descsz);
        block_pad(k, k->align);
}

void eb_add_note_raw(struct elf_builder *b, uint32_t namesz, uint32_t descsz, uint32_t type, const void *bytes,
                     size_t n) {
        note_header(b, namesz, descsz, type);
        block_append(current_block(b), bytes, n);
}

void eb_add_build_id(struct elf_builder *b, const void *id, size_t len) {
        eb_add_note(b, "GNU", NT_GNU_BUILD_ID, id, len);
}

static size_t align8(size_t x) {
        return (x + 7) & ~(size_t) 7;
}

void eb_build(const struct elf_builder *b, struct eb_image *ret) {
        bool is64 = b->elf_class == ELFCLASS64;
        size_t ehsize = is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
        size_t phentsize = is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
        size_t shentsize = is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr);
        size_t n_sections = 0;

        struct eb_image img = {
                .elf_class = b->elf_class,
                .elf_data = b->elf_data,
                .ehsize = ehsize,
                .phoff = b->n_phdrs > 0 ? align8(ehsize) : 0,
                .phentsize = phentsize,
                .phnum = b->n_phdrs,
                .shentsize = shentsize,
        };

        size_t pos = align8(ehsize) + b->n_phdrs * phentsize;
        size_t *block_off = xrealloc(NULL, b->n_blocks * sizeof(size_t));

        pos = align8(pos);
        img.notes_start = pos;
        for (size_t i = 0; i < b->n_blocks; i++) {
                block_off[i] = pos;
                pos = align8(pos + b->blocks[i].len);
                if (b->blocks[i].where == EB_NOTES_SECTION)
                        n_sections++;
        }
        img.notes_end = pos;

        if (n_sections > 0) {
                img.shoff = pos;
                img.shnum = n_sections + 1; /* with the null section 0 */
                pos += img.shnum * shentsize;
        }

        img.size = pos;
        img.data = calloc(1, img.size);
        assert(img.data);

        /* The identification and header. */
        memcpy(img.data, ELFMAG, SELFMAG);
        img.data[EI_CLASS] = b->elf_class;
        img.data[EI_DATA] = b->elf_data;
        img.data[EI_VERSION] = EV_CURRENT;
        img.data[EI_OSABI] = ELFOSABI_SYSV;
        eb_put16(&img, EB_EHDR_FIELD(&img, e_type), b->type);
        eb_put16(&img, EB_EHDR_FIELD(&img, e_machine), is64 ? EM_X86_64 : EM_386);
        eb_put32(&img, EB_EHDR_FIELD(&img, e_version), EV_CURRENT);
        eb_put_word(&img, EB_EHDR_FIELD(&img, e_phoff), img.phoff);
        eb_put_word(&img, EB_EHDR_FIELD(&img, e_shoff), img.shoff);
        eb_put16(&img, EB_EHDR_FIELD(&img, e_ehsize), (uint16_t) ehsize);
        eb_put16(&img, EB_EHDR_FIELD(&img, e_phentsize), (uint16_t) phentsize);
        eb_put16(&img, EB_EHDR_FIELD(&img, e_phnum), (uint16_t) img.phnum);
        eb_put16(&img, EB_EHDR_FIELD(&img, e_shentsize), (uint16_t) shentsize);
        eb_put16(&img, EB_EHDR_FIELD(&img, e_shnum), (uint16_t) img.shnum);

        for (size_t i = 0; i < b->n_phdrs; i++) {
                struct eb_phdr p = b->phdrs[i];

                if (p.block != SIZE_MAX) {
                        p.offset = p.vaddr = block_off[p.block];
                        p.filesz = p.memsz = b->blocks[p.block].len;
                }
                eb_put32(&img, EB_PHDR_FIELD(&img, i, p_type), p.type);
                eb_put32(&img, EB_PHDR_FIELD(&img, i, p_flags), p.flags);
                eb_put_word(&img, EB_PHDR_FIELD(&img, i, p_offset), p.offset);
                eb_put_word(&img, EB_PHDR_FIELD(&img, i, p_vaddr), p.vaddr);
                eb_put_word(&img, EB_PHDR_FIELD(&img, i, p_paddr), p.vaddr);
                eb_put_word(&img, EB_PHDR_FIELD(&img, i, p_filesz), p.filesz);
                eb_put_word(&img, EB_PHDR_FIELD(&img, i, p_memsz), p.memsz);
                eb_put_word(&img, EB_PHDR_FIELD(&img, i, p_align), p.align);
        }

        for (size_t i = 0, s = 1; i < b->n_blocks; i++) {
                const struct eb_block *k = &b->blocks[i];

                if (k->len > 0)
                        memcpy(img.data + block_off[i], k->bytes, k->len);
                if (k->where != EB_NOTES_SECTION)
                        continue;
                eb_put32(&img, EB_SHDR_FIELD(&img, s, sh_type), SHT_NOTE);
                eb_put_word(&img, EB_SHDR_FIELD(&img, s, sh_flags), SHF_ALLOC);
                eb_put_word(&img, EB_SHDR_FIELD(&img, s, sh_addr), block_off[i]);
                eb_put_word(&img, EB_SHDR_FIELD(&img, s, sh_offset), block_off[i]);
                eb_put_word(&img, EB_SHDR_FIELD(&img, s, sh_size), k->len);
                eb_put_word(&img, EB_SHDR_FIELD(&img, s, sh_addralign), k->align);
                s++;
        }

        free(block_off);
        *ret = img;
}

void eb_image_done(struct eb_image *img) {
        free(img->data);
        img->data = NULL;
        img->size = 0;
}

static void put(const struct eb_image *img, size_t offset, uint64_t v, size_t width) {
        assert(offset <= img->size && width <= img->size - offset);
        store(img->elf_data, img->data + offset, v, width);
}

void eb_put16(const struct eb_image *img, size_t offset, uint16_t v) {
        put(img, offset, v, 2);
}

void eb_put32(const struct eb_image *img, size_t offset, uint32_t v) {
        put(img, offset, v, 4);
}

void eb_put64(const struct eb_image *img, size_t offset, uint64_t v) {
        put(img, offset, v, 8);
}

void eb_put_word(const struct eb_image *img, size_t offset, uint64_t v) {
        put(img, offset, v, img->elf_class == ELFCLASS64 ? 8 : 4);
}
