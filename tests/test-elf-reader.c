#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "cleanup.h"
#include "elf-builder.h"
#include "elf-reader.h"
#include "number.h"

#define TEST(name) static void name(void **state __attribute__((unused)))

/* pread() is interposed (the reader is linked into this executable, so its calls land here) to
 * inject what regular files rarely do: short reads, EINTR, and read errors past an offset. */
static struct {
        bool short_reads;     /* at most 7 bytes per call */
        bool eintr;           /* every other call fails with EINTR first */
        int64_t fail_from;    /* fail reads at or past this offset with EIO; -1: never */
        unsigned calls, interrupted;
} fault = { .fail_from = -1 };

ssize_t pread(int fd, void *buf, size_t count, off_t offset) {
        fault.calls++;
        if (fault.eintr && fault.calls % 2 == 1) {
                fault.interrupted++;
                errno = EINTR;
                return -1;
        }
        if (fault.fail_from >= 0 && offset >= fault.fail_from) {
                errno = EIO;
                return -1;
        }
        if (fault.short_reads)
                count = MIN(count, (size_t) 7);
        return syscall(SYS_pread64, fd, buf, count, offset);
}

static const uint8_t combos[][2] = {
        { ELFCLASS64, ELFDATA2LSB },
        { ELFCLASS64, ELFDATA2MSB },
        { ELFCLASS32, ELFDATA2LSB },
        { ELFCLASS32, ELFDATA2MSB },
};

static const uint8_t id_a[20] = { 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
                                  0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10 };
static const uint8_t id_b[8] = { 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7 };

static void assert_build_id(const struct elf_info *info, const uint8_t *id, size_t len) {
        assert_int_equal(info->build_id_len, len);
        if (len > 0)
                assert_memory_equal(info->build_id, id, len);
}

/* Compares what the contract defines (not padding or bytes past the lengths). */
static void assert_info_equal(const struct elf_info *a, const struct elf_info *b) {
        assert_int_equal(a->elf_class, b->elf_class);
        assert_int_equal(a->type, b->type);
        assert_build_id(a, b->build_id, b->build_id_len);
        assert_int_equal(a->n_loads, b->n_loads);
        for (size_t i = 0; i < a->n_loads; i++) {
                assert_int_equal(a->loads[i].offset, b->loads[i].offset);
                assert_int_equal(a->loads[i].vaddr, b->loads[i].vaddr);
                assert_int_equal(a->loads[i].filesz, b->loads[i].filesz);
                assert_int_equal(a->loads[i].memsz, b->loads[i].memsz);
                assert_int_equal(a->loads[i].flags, b->loads[i].flags);
        }
}

/* Parses with the buffer variant, checking that *ret is untouched on failure. */
static int parse(const struct eb_image *img, struct elf_info *ret) {
        struct elf_info canary;
        memset(&canary, 0xa5, sizeof(canary));
        memset(ret, 0xa5, sizeof(*ret));

        int r = elf_info_from_buffer(img->data, img->size, ret);
        if (r < 0)
                assert_memory_equal(ret, &canary, sizeof(canary));
        return r;
}

static int memfd_with(const void *data, size_t size) {
        int fd = memfd_create("elf-test", MFD_CLOEXEC);
        assert_true(fd >= 0);
        if (size > 0)
                assert_int_equal(pwrite(fd, data, size, 0), (ssize_t) size);
        return fd;
}

/* The standard image: two PT_LOADs, a PT_DYNAMIC and a PT_NOTE with an ABI tag then a build ID. */
static const struct elf_load std_loads[] = {
        { .offset = 0, .vaddr = 0x400000, .filesz = 0x1234, .memsz = 0x1234, .flags = PF_R },
        { .offset = 0x3240, .vaddr = 0x404240, .filesz = 0x500, .memsz = 0x800, .flags = PF_R | PF_X },
};

static struct elf_builder *std_builder(uint8_t elf_class, uint8_t elf_data) {
        static const uint8_t abi_tag[16] = { 0 };
        struct elf_builder *b = eb_new(elf_class, elf_data, ET_DYN);

        for (size_t i = 0; i < ELEMENTSOF(std_loads); i++)
                eb_add_load(b, std_loads[i].offset, std_loads[i].vaddr, std_loads[i].filesz, std_loads[i].memsz,
                            std_loads[i].flags);
        eb_add_phdr(b, PT_DYNAMIC, 0x3300, 0x404300, 0x100, 0x100, PF_R | PF_W, 8);
        eb_begin_notes(b, EB_NOTES_SEGMENT, 4);
        eb_add_note(b, "GNU", NT_GNU_ABI_TAG, abi_tag, sizeof(abi_tag));
        eb_add_build_id(b, id_a, sizeof(id_a));
        return b;
}

static void std_image(uint8_t elf_class, uint8_t elf_data, struct eb_image *ret) {
        struct elf_builder *b = std_builder(elf_class, elf_data);
        eb_build(b, ret);
        eb_free(b);
}

static void assert_std_loads(const struct elf_info *info) {
        assert_int_equal(info->n_loads, ELEMENTSOF(std_loads));
        for (size_t i = 0; i < ELEMENTSOF(std_loads); i++) {
                assert_int_equal(info->loads[i].offset, std_loads[i].offset);
                assert_int_equal(info->loads[i].vaddr, std_loads[i].vaddr);
                assert_int_equal(info->loads[i].filesz, std_loads[i].filesz);
                assert_int_equal(info->loads[i].memsz, std_loads[i].memsz);
                assert_int_equal(info->loads[i].flags, std_loads[i].flags);
        }
}

TEST(test_valid_images) {
        for (size_t c = 0; c < ELEMENTSOF(combos); c++) {
                struct eb_image img;
                struct elf_info info;
                uint64_t v;

                std_image(combos[c][0], combos[c][1], &img);
                assert_int_equal(parse(&img, &info), 0);
                assert_int_equal(info.elf_class, combos[c][0]);
                assert_int_equal(info.type, ET_DYN);
                assert_build_id(&info, id_a, sizeof(id_a));
                assert_std_loads(&info);

                assert_int_equal(elf_info_vaddr(&info, 0x100, &v), 0);
                assert_int_equal(v, 0x400100);
                assert_int_equal(elf_info_vaddr(&info, 0x3300, &v), 0);
                assert_int_equal(v, 0x404300);
                eb_image_done(&img);
        }
}

TEST(test_type_and_loads_max) {
        for (size_t c = 0; c < ELEMENTSOF(combos); c++) {
                struct elf_builder *b = eb_new(combos[c][0], combos[c][1], ET_EXEC);
                struct eb_image img;
                struct elf_info info;

                /* More PT_LOADs than kept, interleaved with other program headers. */
                for (uint64_t i = 0; i < ELF_LOADS_MAX + 5; i++) {
                        eb_add_load(b, i * 0x1000, 0x8000000 + i * 0x1000, 0x800 + i, 0x900 + i, (uint32_t) (i % 8));
                        if (i % 3 == 0)
                                eb_add_phdr(b, PT_GNU_STACK, 0, 0, 0, 0, PF_R | PF_W, 16);
                }
                eb_build(b, &img);
                assert_int_equal(parse(&img, &info), 0);
                assert_int_equal(info.type, ET_EXEC);
                assert_int_equal(info.build_id_len, 0);
                assert_int_equal(info.n_loads, ELF_LOADS_MAX);
                for (uint64_t i = 0; i < ELF_LOADS_MAX; i++) {
                        assert_int_equal(info.loads[i].offset, i * 0x1000);
                        assert_int_equal(info.loads[i].vaddr, 0x8000000 + i * 0x1000);
                        assert_int_equal(info.loads[i].filesz, 0x800 + i);
                        assert_int_equal(info.loads[i].memsz, 0x900 + i);
                        assert_int_equal(info.loads[i].flags, i % 8);
                }
                eb_image_done(&img);
                eb_free(b);
        }
}

TEST(test_no_notes) {
        for (size_t c = 0; c < ELEMENTSOF(combos); c++) {
                struct elf_builder *b = eb_new(combos[c][0], combos[c][1], ET_DYN);
                struct eb_image img;
                struct elf_info info;

                eb_add_load(b, 0, 0, 0x100, 0x100, PF_R);
                eb_build(b, &img);
                assert_int_equal(parse(&img, &info), 0);
                assert_int_equal(info.elf_class, combos[c][0]);
                assert_int_equal(info.build_id_len, 0);
                assert_int_equal(info.n_loads, 1);
                eb_image_done(&img);

                /* An empty PT_NOTE and an empty SHT_NOTE section. */
                eb_begin_notes(b, EB_NOTES_SEGMENT, 4);
                eb_begin_notes(b, EB_NOTES_SECTION, 4);
                eb_build(b, &img);
                assert_int_equal(parse(&img, &info), 0);
                assert_int_equal(info.build_id_len, 0);
                eb_image_done(&img);
                eb_free(b);
        }
}

TEST(test_several_notes) {
        static const uint8_t junk[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };

        for (size_t c = 0; c < ELEMENTSOF(combos); c++) {
                struct elf_builder *b = eb_new(combos[c][0], combos[c][1], ET_DYN);
                struct eb_image img;
                struct elf_info info;

                eb_begin_notes(b, EB_NOTES_SEGMENT, 4);
                eb_add_note(b, "GNU", NT_GNU_ABI_TAG, junk, 16 - 4);
                eb_add_note(b, "Go", NT_GNU_BUILD_ID, junk, sizeof(junk));     /* not the GNU owner */
                eb_add_note(b, "GNUX", NT_GNU_BUILD_ID, junk, sizeof(junk));   /* namesz 5 */
                eb_add_note_raw(b, 3, 8, NT_GNU_BUILD_ID, "GNU\0" "abcdefgh", 12); /* "GNU" without NUL */
                eb_add_note(b, NULL, NT_GNU_BUILD_ID, junk, 5);                 /* no owner */
                eb_add_note(b, "GNU", NT_GNU_GOLD_VERSION, junk, 7);            /* other type */
                eb_add_build_id(b, id_a, sizeof(id_a));
                eb_add_build_id(b, id_b, sizeof(id_b));                         /* not the first */
                eb_build(b, &img);
                assert_int_equal(parse(&img, &info), 0);
                assert_build_id(&info, id_a, sizeof(id_a));
                eb_image_done(&img);
                eb_free(b);

                /* The first PT_NOTE without a build ID, the second with one, a third with another. */
                b = eb_new(combos[c][0], combos[c][1], ET_DYN);
                eb_begin_notes(b, EB_NOTES_SEGMENT, 4);
                eb_add_note(b, "Go", NT_GNU_BUILD_ID, junk, sizeof(junk));
                eb_add_load(b, 0, 0, 0x1000, 0x1000, PF_R);
                eb_begin_notes(b, EB_NOTES_SEGMENT, 4);
                eb_add_build_id(b, id_b, sizeof(id_b));
                eb_begin_notes(b, EB_NOTES_SEGMENT, 4);
                eb_add_build_id(b, id_a, sizeof(id_a));
                eb_begin_notes(b, EB_NOTES_SECTION, 4);
                eb_add_build_id(b, id_a, sizeof(id_a));
                eb_build(b, &img);
                assert_int_equal(parse(&img, &info), 0);
                assert_build_id(&info, id_b, sizeof(id_b));
                assert_int_equal(info.n_loads, 1);
                eb_image_done(&img);
                eb_free(b);
        }
}

/* In a segment aligned to 8 (like .note.gnu.property), a 12-byte descriptor is padded to 16. */
TEST(test_note_align8) {
        static const uint8_t prop[12] = { 0x02, 0x00, 0x00, 0xc0, 0x04, 0x00, 0x00, 0x00, 0x03, 0, 0, 0 };

        for (size_t c = 0; c < ELEMENTSOF(combos); c++) {
                struct elf_builder *b = eb_new(combos[c][0], combos[c][1], ET_DYN);
                struct eb_image img;
                struct elf_info info;

                eb_begin_notes(b, EB_NOTES_SEGMENT, 8);
                eb_add_note(b, "GNU", NT_GNU_PROPERTY_TYPE_0, prop, sizeof(prop));
                eb_add_note(b, "GNUXYZ", 0x1234, prop, 3);  /* namesz 7: desc at 24, not 20 */
                eb_add_build_id(b, id_b, sizeof(id_b));
                eb_build(b, &img);
                assert_int_equal(parse(&img, &info), 0);
                assert_build_id(&info, id_b, sizeof(id_b));
                eb_image_done(&img);

                /* The same bytes read with 4-byte alignment would go astray: no build ID. */
                eb_build(b, &img);
                eb_put_word(&img, EB_PHDR_FIELD(&img, 0, p_align), 4);
                assert_int_equal(parse(&img, &info), 0);
                assert_int_equal(info.build_id_len, 0);
                eb_image_done(&img);
                eb_free(b);
        }
}

TEST(test_section_fallback) {
        for (size_t c = 0; c < ELEMENTSOF(combos); c++) {
                struct elf_builder *b = eb_new(combos[c][0], combos[c][1], ET_DYN);
                struct eb_image img;
                struct elf_info info;

                /* Only in a section. */
                eb_add_load(b, 0, 0, 0x1000, 0x1000, PF_R | PF_X);
                eb_begin_notes(b, EB_NOTES_SECTION, 4);
                eb_add_note(b, "GNU", NT_GNU_ABI_TAG, id_b, 4);
                eb_begin_notes(b, EB_NOTES_SECTION, 4);
                eb_add_build_id(b, id_a, sizeof(id_a));
                eb_build(b, &img);
                assert_int_equal(img.shnum, 3);
                assert_int_equal(parse(&img, &info), 0);
                assert_build_id(&info, id_a, sizeof(id_a));
                assert_int_equal(info.n_loads, 1);

                /* Not an SHT_NOTE section any more: nothing. */
                eb_put32(&img, EB_SHDR_FIELD(&img, 2, sh_type), SHT_PROGBITS);
                assert_int_equal(parse(&img, &info), 0);
                assert_int_equal(info.build_id_len, 0);

                /* Section headers too small, or the table beyond the file: no build ID, still ELF. */
                eb_put32(&img, EB_SHDR_FIELD(&img, 2, sh_type), SHT_NOTE);
                eb_put16(&img, EB_EHDR_FIELD(&img, e_shentsize), (uint16_t) (img.shentsize - 1));
                assert_int_equal(parse(&img, &info), 0);
                assert_int_equal(info.build_id_len, 0);
                assert_int_equal(info.n_loads, 1);
                eb_put16(&img, EB_EHDR_FIELD(&img, e_shentsize), (uint16_t) img.shentsize);
                eb_put_word(&img, EB_EHDR_FIELD(&img, e_shoff), img.shoff + 1);
                assert_int_equal(parse(&img, &info), 0);
                assert_int_equal(info.build_id_len, 0);
                eb_put_word(&img, EB_EHDR_FIELD(&img, e_shoff), img.shoff);

                /* Extended section numbering: e_shnum 0, the count in section 0's sh_size. */
                eb_put16(&img, EB_EHDR_FIELD(&img, e_shnum), 0);
                assert_int_equal(parse(&img, &info), 0);
                assert_int_equal(info.build_id_len, 0);
                eb_put_word(&img, EB_SHDR_FIELD(&img, 0, sh_size), 3);
                assert_int_equal(parse(&img, &info), 0);
                assert_build_id(&info, id_a, sizeof(id_a));
                eb_image_done(&img);

                /* A PT_NOTE without a build ID still falls back to sections; one with it wins. */
                eb_begin_notes(b, EB_NOTES_SEGMENT, 4);
                eb_add_note(b, "GNU", NT_GNU_ABI_TAG, id_b, 4);
                eb_build(b, &img);
                assert_int_equal(parse(&img, &info), 0);
                assert_build_id(&info, id_a, sizeof(id_a));
                eb_image_done(&img);

                eb_add_build_id(b, id_b, sizeof(id_b));
                eb_build(b, &img);
                assert_int_equal(parse(&img, &info), 0);
                assert_build_id(&info, id_b, sizeof(id_b));
                eb_image_done(&img);
                eb_free(b);
        }
}

TEST(test_truncated_headers) {
        for (size_t c = 0; c < ELEMENTSOF(combos); c++) {
                struct eb_image img;
                struct elf_info info;

                std_image(combos[c][0], combos[c][1], &img);
                for (size_t len = 0; len < sizeof(Elf64_Ehdr); len++) {
                        uint8_t *copy = malloc(len ? len : 1);
                        assert_non_null(copy);
                        memcpy(copy, img.data, len);
                        struct eb_image t = img;
                        t.data = copy;
                        t.size = len;
                        /* A 32-bit header is complete at 52 bytes, but then the program headers
                         * are missing: not usable either. */
                        assert_int_equal(parse(&t, &info), -ENOEXEC);
                        free(copy);
                }

                /* Cut anywhere within the program header table. */
                for (size_t len = img.phoff; len < img.phoff + img.phnum * img.phentsize; len++) {
                        struct eb_image t = img;
                        t.size = len;
                        assert_int_equal(parse(&t, &info), -ENOEXEC);
                }
                eb_image_done(&img);
        }
}

TEST(test_bad_ident) {
        static const struct {
                size_t offset;
                uint8_t value;
        } bad[] = {
                { EI_MAG0, 0x7e }, { EI_MAG1, 'e' }, { EI_MAG2, 'l' }, { EI_MAG3, 'g' },
                { EI_CLASS, ELFCLASSNONE }, { EI_CLASS, 3 }, { EI_CLASS, 0xff },
                { EI_DATA, ELFDATANONE }, { EI_DATA, 3 }, { EI_DATA, 0x80 },
        };
        struct eb_image img;
        struct elf_info info;

        std_image(ELFCLASS64, ELFDATA2LSB, &img);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                uint8_t saved = img.data[bad[i].offset];
                img.data[bad[i].offset] = bad[i].value;
                assert_int_equal(parse(&img, &info), -ENOEXEC);
                img.data[bad[i].offset] = saved;
                assert_int_equal(parse(&img, &info), 0);
        }
        assert_int_equal(elf_info_from_buffer("#!/bin/sh\n", 10, &info), -ENOEXEC);
        assert_int_equal(elf_info_from_buffer(NULL, 0, &info), -ENOEXEC);
        eb_image_done(&img);
}

TEST(test_phdr_table_bad) {
        for (size_t c = 0; c < ELEMENTSOF(combos); c++) {
                struct eb_image img;
                struct elf_info info;
                size_t phoff, phnum, phentsize;

                std_image(combos[c][0], combos[c][1], &img);
                phoff = EB_EHDR_FIELD(&img, e_phoff);
                phnum = EB_EHDR_FIELD(&img, e_phnum);
                phentsize = EB_EHDR_FIELD(&img, e_phentsize);

                /* Past the end, one byte over, and offsets whose end overflows. */
                eb_put_word(&img, phoff, img.size);
                assert_int_equal(parse(&img, &info), -ENOEXEC);
                eb_put_word(&img, phoff, img.size - img.phnum * img.phentsize + 1);
                assert_int_equal(parse(&img, &info), -ENOEXEC);
                eb_put_word(&img, phoff, img.size - img.phnum * img.phentsize);
                assert_int_equal(parse(&img, &info), 0); /* the last bytes, garbage but in bounds */
                eb_put_word(&img, phoff, img.elf_class == ELFCLASS64 ? UINT64_MAX - 8 : UINT32_MAX - 8);
                assert_int_equal(parse(&img, &info), -ENOEXEC);
                eb_put_word(&img, phoff, img.phoff);
                assert_int_equal(parse(&img, &info), 0);

                /* Entries smaller than the structure; zero. */
                eb_put16(&img, phentsize, (uint16_t) (img.phentsize - 1));
                assert_int_equal(parse(&img, &info), -ENOEXEC);
                eb_put16(&img, phentsize, 0);
                assert_int_equal(parse(&img, &info), -ENOEXEC);
                eb_put16(&img, phentsize, (uint16_t) img.phentsize);

                /* Huge counts: beyond the file, beyond the 64 KiB bound, PN_XNUM. */
                eb_put16(&img, phnum, (uint16_t) (img.phnum + 1));
                assert_int_equal(parse(&img, &info), 0); /* the next entry is note bytes, in bounds */
                eb_put16(&img, phnum, 0xfffe);
                assert_int_equal(parse(&img, &info), -ENOEXEC);
                eb_put16(&img, phnum, PN_XNUM);
                assert_int_equal(parse(&img, &info), -ENOEXEC);

                /* No program headers at all (a relocatable object): fine, ignoring phoff/phentsize. */
                eb_put16(&img, phnum, 0);
                eb_put_word(&img, phoff, UINT32_MAX);
                eb_put16(&img, phentsize, 0);
                assert_int_equal(parse(&img, &info), 0);
                assert_int_equal(info.n_loads, 0);
                assert_int_equal(info.build_id_len, 0);
                eb_image_done(&img);
        }
}

/* Program header tables are read up to 64 KiB, even when the file holds a larger one. */
TEST(test_phdr_table_limit) {
        for (size_t c = 0; c < ELEMENTSOF(combos); c++) {
                size_t entsize = combos[c][0] == ELFCLASS64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
                size_t fits = 64 * 1024 / entsize;

                for (size_t n = fits; n <= fits + 1; n++) {
                        struct elf_builder *b = eb_new(combos[c][0], combos[c][1], ET_DYN);
                        struct eb_image img;
                        struct elf_info info;

                        for (size_t i = 0; i + 1 < n; i++) /* and the PT_NOTE: n entries */
                                eb_add_load(b, i * 0x1000, i * 0x1000, 0x1000, 0x1000, PF_R);
                        eb_begin_notes(b, EB_NOTES_SEGMENT, 4);
                        eb_add_build_id(b, id_a, sizeof(id_a));
                        eb_build(b, &img);
                        assert_int_equal(img.phnum, n);
                        assert_true(img.size > img.phoff + n * entsize);
                        if (n == fits) {
                                assert_int_equal(parse(&img, &info), 0);
                                assert_int_equal(info.n_loads, ELF_LOADS_MAX);
                                assert_build_id(&info, id_a, sizeof(id_a));
                        } else
                                assert_int_equal(parse(&img, &info), -ENOEXEC);
                        eb_image_done(&img);
                        eb_free(b);
                }
        }
}

/* Larger program header entries than the structure are allowed: entries are e_phentsize apart. */
TEST(test_phentsize_larger) {
        for (size_t c = 0; c < ELEMENTSOF(combos); c++) {
                struct eb_image img, big;
                struct elf_info info;
                size_t extra = 24;

                std_image(combos[c][0], combos[c][1], &img);
                size_t newsize = img.phnum * (img.phentsize + extra);
                big = img;
                big.size = img.size + newsize;
                big.data = calloc(1, big.size);
                assert_non_null(big.data);
                memcpy(big.data, img.data, img.size);
                big.phoff = img.size;
                big.phentsize = img.phentsize + extra;
                for (size_t i = 0; i < img.phnum; i++)
                        memcpy(big.data + big.phoff + i * big.phentsize, img.data + img.phoff + i * img.phentsize,
                               img.phentsize);
                memset(big.data + img.phoff, 0xff, img.phnum * img.phentsize); /* the old table is garbage */
                eb_put_word(&big, EB_EHDR_FIELD(&big, e_phoff), big.phoff);
                eb_put16(&big, EB_EHDR_FIELD(&big, e_phentsize), (uint16_t) big.phentsize);

                assert_int_equal(parse(&big, &info), 0);
                assert_std_loads(&info);
                assert_build_id(&info, id_a, sizeof(id_a));
                eb_image_done(&big);
                eb_image_done(&img);
        }
}

TEST(test_broken_notes) {
        static const uint8_t bytes[32] = { 'G', 'N', 'U', 0, 1, 2, 3, 4, 5, 6, 7, 8 };
        static const uint32_t bad_sizes[][2] = {
                { 0xffffffff, 8 }, { 4, 0xffffffff }, { 0xffffffff, 0xffffffff }, { 0xfffffffd, 8 },
                { 4, 0xfffffffd }, { 0xfffffff0, 0x20 }, { 4, 64 }, { 200, 4 }, { 4, 57 },
        };

        for (size_t c = 0; c < ELEMENTSOF(combos); c++)
                for (size_t i = 0; i < ELEMENTSOF(bad_sizes); i++)
                        for (uint64_t align = 4; align <= 8; align += 4) {
                                struct elf_builder *b = eb_new(combos[c][0], combos[c][1], ET_DYN);
                                struct eb_image img;
                                struct elf_info info;

                                /* A broken note ends the scan of its segment, even when a good one
                                 * follows it there; the next segment is still scanned. */
                                eb_begin_notes(b, EB_NOTES_SEGMENT, align);
                                eb_add_note_raw(b, bad_sizes[i][0], bad_sizes[i][1], NT_GNU_BUILD_ID, bytes,
                                                sizeof(bytes));
                                eb_add_build_id(b, id_b, sizeof(id_b));
                                eb_build(b, &img);
                                assert_int_equal(parse(&img, &info), 0);
                                assert_int_equal(info.build_id_len, 0);
                                eb_image_done(&img);

                                eb_begin_notes(b, EB_NOTES_SEGMENT, align);
                                eb_add_build_id(b, id_a, sizeof(id_a));
                                eb_build(b, &img);
                                assert_int_equal(parse(&img, &info), 0);
                                assert_build_id(&info, id_a, sizeof(id_a));
                                eb_image_done(&img);
                                eb_free(b);
                        }
}

TEST(test_note_past_segment) {
        for (size_t c = 0; c < ELEMENTSOF(combos); c++) {
                struct eb_image img;
                struct elf_info info;

                std_image(combos[c][0], combos[c][1], &img);
                /* The note segment is the 4th program header: ABI tag (32 bytes) + build ID (36). */
                size_t filesz = EB_PHDR_FIELD(&img, 3, p_filesz), offset = EB_PHDR_FIELD(&img, 3, p_offset);
                assert_int_equal(parse(&img, &info), 0);
                assert_build_id(&info, id_a, sizeof(id_a));

                /* The bytes are in the file, but not in the segment any more. */
                for (uint64_t sz = 32; sz < 32 + 36; sz++) {
                        eb_put_word(&img, filesz, sz);
                        assert_int_equal(parse(&img, &info), 0);
                        assert_int_equal(info.build_id_len, 0);
                }

                /* The segment runs past the end of the file: what is there is still used. */
                eb_put_word(&img, filesz, 0x100000);
                assert_int_equal(parse(&img, &info), 0);
                assert_build_id(&info, id_a, sizeof(id_a));
                eb_put_word(&img, filesz, img.elf_class == ELFCLASS64 ? UINT64_MAX : UINT32_MAX);
                assert_int_equal(parse(&img, &info), 0);
                assert_build_id(&info, id_a, sizeof(id_a));

                /* The segment starts past the end, or so that its end overflows. */
                eb_put_word(&img, offset, img.size);
                assert_int_equal(parse(&img, &info), 0);
                assert_int_equal(info.build_id_len, 0);
                eb_put_word(&img, offset, img.elf_class == ELFCLASS64 ? UINT64_MAX : UINT32_MAX);
                assert_int_equal(parse(&img, &info), 0);
                assert_int_equal(info.build_id_len, 0);
                assert_std_loads(&info);
                eb_image_done(&img);
        }
}

TEST(test_build_id_length) {
        uint8_t id[MAPPING_BUILD_ID_MAX + 1];

        for (size_t i = 0; i < sizeof(id); i++)
                id[i] = (uint8_t) (i * 7 + 1);

        for (size_t c = 0; c < ELEMENTSOF(combos); c++) {
                struct elf_builder *b;
                struct eb_image img;
                struct elf_info info;

                /* MAPPING_BUILD_ID_MAX + 1 and 0 are ignored; MAPPING_BUILD_ID_MAX and 1 are fine. */
                b = eb_new(combos[c][0], combos[c][1], ET_DYN);
                eb_begin_notes(b, EB_NOTES_SEGMENT, 4);
                eb_add_build_id(b, id, MAPPING_BUILD_ID_MAX + 1);
                eb_add_build_id(b, id, 0);
                eb_build(b, &img);
                assert_int_equal(parse(&img, &info), 0);
                assert_int_equal(info.build_id_len, 0);
                eb_image_done(&img);

                eb_add_build_id(b, id, MAPPING_BUILD_ID_MAX);
                eb_build(b, &img);
                assert_int_equal(parse(&img, &info), 0);
                assert_build_id(&info, id, MAPPING_BUILD_ID_MAX);
                eb_image_done(&img);
                eb_free(b);

                b = eb_new(combos[c][0], combos[c][1], ET_DYN);
                eb_begin_notes(b, EB_NOTES_SEGMENT, 4);
                eb_add_build_id(b, id + 5, 1);
                eb_build(b, &img);
                assert_int_equal(parse(&img, &info), 0);
                assert_build_id(&info, id + 5, 1);
                eb_image_done(&img);
                eb_free(b);
        }
}

/* Notes are read up to 1 MiB in all: a build ID after that is not seen. */
TEST(test_note_budget) {
        static uint8_t filler[4096];

        for (int past = 0; past <= 1; past++) {
                struct elf_builder *b = eb_new(ELFCLASS64, ELFDATA2LSB, ET_DYN);
                struct eb_image img;
                struct elf_info info;
                size_t note_size = 12 + 4 + sizeof(filler);
                /* Just enough filler to end before the limit, or to push the build ID past it. */
                size_t n = (1024 * 1024 - 36) / note_size + (size_t) past;

                eb_begin_notes(b, EB_NOTES_SEGMENT, 4);
                for (size_t i = 0; i < n; i++)
                        eb_add_note(b, "XYZ", 1, filler, sizeof(filler));
                eb_add_build_id(b, id_a, sizeof(id_a));
                eb_build(b, &img);
                assert_int_equal(parse(&img, &info), 0);
                if (past)
                        assert_int_equal(info.build_id_len, 0);
                else
                        assert_build_id(&info, id_a, sizeof(id_a));

                _cleanup_close_ int fd = memfd_with(img.data, img.size);
                assert_int_equal(elf_info_from_fd(fd, &info), 0);
                assert_int_equal(info.build_id_len, past ? 0 : sizeof(id_a));

                eb_image_done(&img);
                eb_free(b);
        }
}

TEST(test_vaddr) {
        struct eb_image img;
        struct elf_info info;
        uint64_t v;
        static const struct {
                uint64_t offset, vaddr;
        } found[] = {
                { 0, 0x400000 },       { 0x100, 0x400100 },   { 0x1233, 0x401233 }, /* exact, load 0 */
                { 0x3240, 0x404240 },  { 0x373f, 0x40473f },                        /* exact, load 1 */
                { 0x1234, 0x401234 },  { 0x1fff, 0x401fff },                        /* rounded, load 0 */
                { 0x3000, 0x404000 },  { 0x323f, 0x40423f }, { 0x3740, 0x404740 }, { 0x3fff, 0x404fff },
        };
        static const uint64_t not_found[] = { 0x2000, 0x2fff, 0x4000, 0x100000, UINT64_MAX };

        std_image(ELFCLASS32, ELFDATA2MSB, &img);
        assert_int_equal(parse(&img, &info), 0);
        eb_image_done(&img);

        for (size_t i = 0; i < ELEMENTSOF(found); i++) {
                v = 0;
                assert_int_equal(elf_info_vaddr(&info, found[i].offset, &v), 0);
                assert_int_equal(v, found[i].vaddr);
        }
        for (size_t i = 0; i < ELEMENTSOF(not_found); i++) {
                v = 42;
                assert_int_equal(elf_info_vaddr(&info, not_found[i], &v), -ENOENT);
                assert_int_equal(v, 42);
        }

        /* An exact match wins over an earlier page-rounded one. */
        struct elf_info t = {
                .elf_class = ELFCLASS64,
                .n_loads = 2,
                .loads = {
                        { .offset = 0, .vaddr = 0x10000, .filesz = 0x800 },
                        { .offset = 0x900, .vaddr = 0x20900, .filesz = 0x100 },
                },
        };
        assert_int_equal(elf_info_vaddr(&t, 0x950, &v), 0);
        assert_int_equal(v, 0x20950);
        assert_int_equal(elf_info_vaddr(&t, 0x850, &v), 0);
        assert_int_equal(v, 0x10850);

        /* At the exact end of one load, the next load starts: it is the exact match. */
        t.loads[0] = (struct elf_load) { .offset = 0, .vaddr = 0x10000, .filesz = 0x800 };
        t.loads[1] = (struct elf_load) { .offset = 0x800, .vaddr = 0x30800, .filesz = 0x100 };
        assert_int_equal(elf_info_vaddr(&t, 0x800, &v), 0);
        assert_int_equal(v, 0x30800);
        assert_int_equal(elf_info_vaddr(&t, 0x7ff, &v), 0);
        assert_int_equal(v, 0x107ff);

        /* Arithmetic at the edges. */
        t = (struct elf_info) {
                .elf_class = ELFCLASS64,
                .n_loads = 1,
                .loads = { { .offset = 0x1000, .vaddr = UINT64_MAX - 0x10, .filesz = 0x100 } },
        };
        assert_int_equal(elf_info_vaddr(&t, 0x1008, &v), 0);
        assert_int_equal(v, UINT64_MAX - 0x8);
        v = 42;
        assert_int_equal(elf_info_vaddr(&t, 0x1080, &v), -ENOENT); /* vaddr would wrap */
        assert_int_equal(v, 42);

        t.loads[0] = (struct elf_load) { .offset = 0x1800, .vaddr = 0x100, .filesz = 0x10 };
        assert_int_equal(elf_info_vaddr(&t, 0x1700, &v), 0);
        assert_int_equal(v, 0);
        assert_int_equal(elf_info_vaddr(&t, 0x1000, &v), -ENOENT); /* vaddr would be negative */

        t.loads[0] = (struct elf_load) { .offset = UINT64_MAX - 0x10, .vaddr = 0, .filesz = 0x100 };
        assert_int_equal(elf_info_vaddr(&t, UINT64_MAX - 1, &v), 0);
        assert_int_equal(v, 0xf);
        assert_int_equal(elf_info_vaddr(&t, UINT64_MAX - 0x1000, &v), -ENOENT);
        assert_int_equal(elf_info_vaddr(&t, UINT64_MAX - 0x20, &v), -ENOENT); /* rounded: vaddr < 0 */
        /* The page-rounded end overflows: the range runs to the top. */
        t.loads[0].vaddr = 0x100000;
        assert_int_equal(elf_info_vaddr(&t, UINT64_MAX - 0x20, &v), 0);
        assert_int_equal(v, 0x100000 - 0x10);
        assert_int_equal(elf_info_vaddr(&t, UINT64_MAX, &v), 0);
        assert_int_equal(v, 0x100000 + 0x10);

        /* No loads; n_loads beyond the array is clamped. */
        t.n_loads = 0;
        assert_int_equal(elf_info_vaddr(&t, UINT64_MAX - 1, &v), -ENOENT);
        memset(&t, 0, sizeof(t));
        t.n_loads = 255;
        t.loads[ELF_LOADS_MAX - 1] = (struct elf_load) { .offset = 0x5000, .vaddr = 0x9000, .filesz = 0x10 };
        assert_int_equal(elf_info_vaddr(&t, 0x5001, &v), 0);
        assert_int_equal(v, 0x9001);
}

TEST(test_fd_crafted) {
        for (size_t c = 0; c < ELEMENTSOF(combos); c++) {
                struct eb_image img;
                struct elf_info a, b;

                std_image(combos[c][0], combos[c][1], &img);
                assert_int_equal(parse(&img, &a), 0);

                _cleanup_close_ int fd = memfd_with(img.data, img.size);
                assert_int_equal(elf_info_from_fd(fd, &b), 0);
                assert_info_equal(&a, &b);
                assert_build_id(&b, id_a, sizeof(id_a));
                assert_std_loads(&b);

                /* A failing read of the notes (no section table follows to fail as well). */
                assert_int_equal(img.shnum, 0);
                fault.fail_from = (int64_t) img.notes_start;
                int r = elf_info_from_fd(fd, &b);
                fault.fail_from = -1;
                assert_int_equal(r, -EIO);

                /* A regular file too (the offset of the fd is irrelevant: pread). */
                char path[] = "/tmp/test-elf-reader.XXXXXX";
                _cleanup_close_ int tfd = mkstemp(path);
                assert_true(tfd >= 0);
                assert_int_equal(unlink(path), 0);
                assert_int_equal(write(tfd, img.data, img.size), (ssize_t) img.size);
                memset(&b, 0, sizeof(b));
                assert_int_equal(elf_info_from_fd(tfd, &b), 0);
                assert_info_equal(&a, &b);

                /* Truncated: the header, then the notes. */
                memset(&b, 0x5a, sizeof(b));
                struct elf_info canary = b;
                assert_int_equal(ftruncate(tfd, 40), 0);
                assert_int_equal(elf_info_from_fd(tfd, &b), -ENOEXEC);
                assert_memory_equal(&b, &canary, sizeof(b));
                assert_int_equal(ftruncate(tfd, 0), 0);
                assert_int_equal(elf_info_from_fd(tfd, &b), -ENOEXEC);
                assert_int_equal(pwrite(tfd, img.data, img.notes_start + 40, 0), (ssize_t) (img.notes_start + 40));
                assert_int_equal(elf_info_from_fd(tfd, &b), 0);
                assert_int_equal(b.build_id_len, 0);
                assert_std_loads(&b);
                eb_image_done(&img);
        }
}

TEST(test_fd_errors) {
        struct elf_info info;
        int p[2];

        memset(&info, 0x5a, sizeof(info));
        struct elf_info canary = info;

        assert_int_equal(elf_info_from_fd(-1, &info), -EBADF);
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        assert_int_equal(write(p[1], ELFMAG, SELFMAG), SELFMAG);
        assert_int_equal(elf_info_from_fd(p[0], &info), -ESPIPE);
        close(p[0]);
        close(p[1]);

        _cleanup_close_ int dfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(dfd >= 0);
        assert_int_equal(elf_info_from_fd(dfd, &info), -EISDIR);

        /* Character devices have no meaningful size: reads find the data's end. */
        _cleanup_close_ int zfd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
        assert_true(zfd >= 0);
        assert_int_equal(elf_info_from_fd(zfd, &info), -ENOEXEC);
        _cleanup_close_ int nfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        assert_true(nfd >= 0);
        assert_int_equal(elf_info_from_fd(nfd, &info), -ENOEXEC);
        assert_memory_equal(&info, &canary, sizeof(info));
}

TEST(test_fd_short_reads) {
        for (size_t c = 0; c < ELEMENTSOF(combos); c++) {
                struct elf_builder *b = std_builder(combos[c][0], combos[c][1]);
                struct eb_image img;
                struct elf_info x, y;

                eb_begin_notes(b, EB_NOTES_SECTION, 4);
                eb_add_build_id(b, id_b, sizeof(id_b));
                eb_build(b, &img);
                eb_free(b);

                _cleanup_close_ int fd = memfd_with(img.data, img.size);
                assert_int_equal(parse(&img, &x), 0);

                fault.short_reads = fault.eintr = true;
                fault.calls = fault.interrupted = 0;
                int r = elf_info_from_fd(fd, &y);
                fault.short_reads = fault.eintr = false;
                assert_int_equal(r, 0);
                assert_info_equal(&x, &y);
                assert_build_id(&y, id_a, sizeof(id_a));
                assert_true(fault.interrupted > 0);
                assert_true(fault.calls > 2 * (img.phnum * img.phentsize / 7));

                /* The section fallback, read in pieces too. */
                eb_put32(&img, EB_PHDR_FIELD(&img, 3, p_type), PT_NULL);
                assert_int_equal(pwrite(fd, img.data, img.size, 0), (ssize_t) img.size);
                fault.short_reads = fault.eintr = true;
                r = elf_info_from_fd(fd, &y);
                fault.short_reads = fault.eintr = false;
                assert_int_equal(r, 0);
                assert_build_id(&y, id_b, sizeof(id_b));

                /* A failing read is reported, with *ret untouched: in the header, in the notes. */
                memset(&y, 0x5a, sizeof(y));
                struct elf_info canary = y;
                fault.fail_from = 0;
                assert_int_equal(elf_info_from_fd(fd, &y), -EIO);
                fault.fail_from = (int64_t) img.notes_start;
                assert_int_equal(elf_info_from_fd(fd, &y), -EIO);
                fault.fail_from = (int64_t) img.shoff;
                assert_int_equal(elf_info_from_fd(fd, &y), -EIO);
                fault.fail_from = -1;
                assert_memory_equal(&y, &canary, sizeof(y));
                eb_image_done(&img);
        }
}

/* The fd variant and the buffer variant agree on the same bytes, for every prefix of an image. */
TEST(test_fd_buffer_agree) {
        for (size_t c = 0; c < ELEMENTSOF(combos); c++) {
                struct elf_builder *b = std_builder(combos[c][0], combos[c][1]);
                struct eb_image img;

                eb_begin_notes(b, EB_NOTES_SECTION, 4);
                eb_add_build_id(b, id_b, sizeof(id_b));
                eb_build(b, &img);
                eb_free(b);

                _cleanup_close_ int fd = memfd_with(img.data, img.size);
                for (size_t len = img.size + 1; len-- > 0;) {
                        struct elf_info x, y;
                        struct eb_image t = img;
                        t.size = len;

                        assert_int_equal(ftruncate(fd, (off_t) len), 0);
                        int r = parse(&t, &x);
                        assert_int_equal(elf_info_from_fd(fd, &y), r);
                        if (r == 0)
                                assert_info_equal(&x, &y);
                        else
                                assert_int_equal(r, -ENOEXEC);
                }
                eb_image_done(&img);
        }
}

/* Every byte of the headers and notes set to 0xff, 0x00 and 0x80: no crash (ASan checks bounds),
 * only 0 or -ENOEXEC, sane results, and both variants agree. */
TEST(test_mutations) {
        static const uint8_t values[] = { 0xff, 0x00, 0x80 };
        static const uint8_t prop[12] = { 2, 0, 0, 0xc0, 4, 0, 0, 0, 3 };
        size_t ok = 0, noexec = 0, with_id = 0;

        for (size_t c = 0; c < ELEMENTSOF(combos); c++) {
                struct elf_builder *b = std_builder(combos[c][0], combos[c][1]);
                struct eb_image img;

                eb_begin_notes(b, EB_NOTES_SEGMENT, 8);
                eb_add_note(b, "GNU", NT_GNU_PROPERTY_TYPE_0, prop, sizeof(prop));
                eb_add_build_id(b, id_b, sizeof(id_b));
                eb_begin_notes(b, EB_NOTES_SECTION, 4);
                eb_add_build_id(b, id_b, sizeof(id_b));
                eb_build(b, &img);
                eb_free(b);

                _cleanup_close_ int fd = memfd_with(img.data, img.size);
                uint8_t *copy = malloc(img.size); /* exactly sized: ASan sees any overread */
                assert_non_null(copy);

                for (size_t pos = 0; pos < img.size; pos++)
                        for (size_t k = 0; k < ELEMENTSOF(values); k++) {
                                struct elf_info x, y;

                                memcpy(copy, img.data, img.size);
                                copy[pos] = values[k];
                                int r = elf_info_from_buffer(copy, img.size, &x);
                                assert_true(r == 0 || r == -ENOEXEC);
                                if (r == 0) {
                                        ok++;
                                        assert_int_equal(x.elf_class, combos[c][0]);
                                        assert_true(x.build_id_len <= MAPPING_BUILD_ID_MAX);
                                        assert_true(x.n_loads <= ELF_LOADS_MAX);
                                        if (x.build_id_len > 0)
                                                with_id++;
                                } else
                                        noexec++;

                                assert_int_equal(pwrite(fd, copy, img.size, 0), (ssize_t) img.size);
                                assert_int_equal(elf_info_from_fd(fd, &y), r);
                                if (r == 0)
                                        assert_info_equal(&x, &y);
                        }
                free(copy);
                eb_image_done(&img);
        }
        /* The loop exercised both outcomes. */
        assert_true(ok > 0);
        assert_true(noexec > 0);
        assert_true(with_id > 0);
}

/* Offsets near 2^63, where an off_t ends: the kernel refuses a pread() whose offset + count passes
 * 2^63 - 1 (EINVAL), while a buffer simply has no bytes there. Both variants agree that nothing is
 * there: the section table (with e_shnum 0 the reader first fetches section 0 at e_shoff for the
 * count), the program header table and a PT_NOTE segment. fuzz-elf found the first; its input is
 * fuzz/corpus/elf/shoff-near-2p63. */
TEST(test_fd_offsets_near_2p63) {
        static const uint64_t offsets[] = {
                INT64_MAX, INT64_MAX - 1, INT64_MAX - 8, INT64_MAX - 63, INT64_MAX - 64,
                (uint64_t) INT64_MAX + 1, UINT64_MAX - 63, UINT64_MAX,
        };
        struct elf_builder *b = std_builder(ELFCLASS64, ELFDATA2LSB); /* 32-bit offsets stop at 2^32 */
        struct eb_image img;

        eb_begin_notes(b, EB_NOTES_SECTION, 4);
        eb_add_build_id(b, id_b, sizeof(id_b));
        eb_build(b, &img);
        eb_free(b);
        uint8_t *orig = malloc(img.size);
        assert_non_null(orig);
        memcpy(orig, img.data, img.size);
        _cleanup_close_ int fd = memfd_with(NULL, 0);

        for (size_t k = 0; k < ELEMENTSOF(offsets); k++)
                for (int what = 0; what < 4; what++) {
                        struct elf_info x, y;

                        memcpy(img.data, orig, img.size);
                        if (what <= 1) /* no PT_NOTE: the build ID is looked for in the sections */
                                eb_put32(&img, EB_PHDR_FIELD(&img, 3, p_type), PT_NULL);
                        if (what == 0) /* the count is section 0's sh_size */
                                eb_put16(&img, EB_EHDR_FIELD(&img, e_shnum), 0);
                        if (what <= 1)
                                eb_put_word(&img, EB_EHDR_FIELD(&img, e_shoff), offsets[k]);
                        else if (what == 2)
                                eb_put_word(&img, EB_EHDR_FIELD(&img, e_phoff), offsets[k]);
                        else /* the PT_NOTE's notes are not there: the section's build ID is found */
                                eb_put_word(&img, EB_PHDR_FIELD(&img, 3, p_offset), offsets[k]);

                        int r = parse(&img, &x);
                        assert_int_equal(r, what == 2 ? -ENOEXEC : 0);
                        if (r == 0) {
                                assert_std_loads(&x);
                                if (what == 3)
                                        assert_build_id(&x, id_b, sizeof(id_b));
                                else
                                        assert_int_equal(x.build_id_len, 0);
                        }

                        assert_int_equal(ftruncate(fd, 0), 0);
                        assert_int_equal(pwrite(fd, img.data, img.size, 0), (ssize_t) img.size);
                        assert_int_equal(elf_info_from_fd(fd, &y), r);
                        if (r == 0)
                                assert_info_equal(&x, &y);
                }
        free(orig);
        eb_image_done(&img);
}

/* ---------------------------------------------------------------- real binaries vs readelf */

static bool have_readelf(void) {
        return system("command -v readelf >/dev/null 2>&1") == 0;
}

static FILE *run_readelf(const char *opts, const char *path) {
        char cmd[PATH_MAX + 64];
        assert_null(strchr(path, '\''));
        snprintf(cmd, sizeof(cmd), "LC_ALL=C readelf %s '%s' 2>/dev/null", opts, path);
        FILE *f = popen(cmd, "r");
        assert_non_null(f);
        return f;
}

/* The first "Build ID: <hex>" readelf -n prints. */
static size_t readelf_build_id(const char *path, uint8_t id[static MAPPING_BUILD_ID_MAX]) {
        FILE *f = run_readelf("-nW", path);
        char line[4096];
        size_t len = 0;
        bool found = false;

        while (fgets(line, sizeof(line), f)) {
                const char *p = strstr(line, "Build ID: ");
                if (!p || found)
                        continue;
                found = true;
                for (p += strlen("Build ID: "); unhexchar(p[0]) >= 0 && unhexchar(p[1]) >= 0; p += 2) {
                        assert_true(len < MAPPING_BUILD_ID_MAX);
                        id[len++] = (uint8_t) (unhexchar(p[0]) << 4 | unhexchar(p[1]));
                }
        }
        assert_int_equal(pclose(f), 0);
        return len;
}

/* The LOAD lines of readelf -lW: Offset VirtAddr PhysAddr FileSiz MemSiz Flg Align. */
static size_t readelf_loads(const char *path, struct elf_load *loads, size_t max) {
        FILE *f = run_readelf("-lW", path);
        char line[4096];
        size_t n = 0;

        while (fgets(line, sizeof(line), f)) {
                uint64_t offset, vaddr, paddr, filesz, memsz;
                int end = 0;

                if (sscanf(line, " LOAD %" SCNx64 " %" SCNx64 " %" SCNx64 " %" SCNx64 " %" SCNx64 " %n", &offset,
                           &vaddr, &paddr, &filesz, &memsz, &end) != 5 || end == 0)
                        continue;

                uint32_t flags = 0;
                for (const char *p = line + end; *p && !(p[0] == '0' && p[1] == 'x'); p++)
                        flags |= *p == 'R' ? PF_R : *p == 'W' ? PF_W : *p == 'E' ? PF_X : 0;
                if (n < max)
                        loads[n] = (struct elf_load) {
                                .offset = offset, .vaddr = vaddr, .filesz = filesz, .memsz = memsz, .flags = flags,
                        };
                n++;
        }
        assert_int_equal(pclose(f), 0);
        return n;
}

static void check_real_binary(const char *path) {
        uint8_t id[MAPPING_BUILD_ID_MAX];
        struct elf_load loads[ELF_LOADS_MAX];
        struct elf_info info;

        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                printf("# skipping %s: %m\n", path);
                return;
        }
        assert_int_equal(elf_info_from_fd(fd, &info), 0);

        size_t id_len = readelf_build_id(path, id);
        size_t n = readelf_loads(path, loads, ELEMENTSOF(loads));
        printf("# %s: %zu-byte build ID, %zu PT_LOADs\n", path, id_len, n);

        assert_build_id(&info, id, id_len);
        assert_true(n > 0);
        assert_int_equal(info.n_loads, MIN(n, (size_t) ELF_LOADS_MAX));
        for (size_t i = 0; i < info.n_loads; i++) {
                assert_int_equal(info.loads[i].offset, loads[i].offset);
                assert_int_equal(info.loads[i].vaddr, loads[i].vaddr);
                assert_int_equal(info.loads[i].filesz, loads[i].filesz);
                assert_int_equal(info.loads[i].memsz, loads[i].memsz);
                assert_int_equal(info.loads[i].flags, loads[i].flags);
        }

        /* Each load's first byte maps to its vaddr. */
        for (size_t i = 0; i < info.n_loads; i++) {
                uint64_t v;
                if (info.loads[i].filesz == 0)
                        continue;
                assert_int_equal(elf_info_vaddr(&info, info.loads[i].offset, &v), 0);
                assert_int_equal(v, info.loads[i].vaddr);
        }

        /* The buffer variant agrees on the whole file. */
        struct stat st;
        assert_int_equal(fstat(fd, &st), 0);
        uint8_t *data = malloc((size_t) st.st_size);
        assert_non_null(data);
        assert_int_equal(pread(fd, data, (size_t) st.st_size, 0), st.st_size);
        struct elf_info b;
        assert_int_equal(elf_info_from_buffer(data, (size_t) st.st_size, &b), 0);
        assert_info_equal(&info, &b);
        free(data);
}

TEST(test_real_binaries) {
        char self[PATH_MAX];

        if (!have_readelf()) {
                printf("# readelf not found, skipping\n");
                skip();
        }

        /* readelf would read its own /proc/self/exe: resolve ours first. */
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        assert_true(n > 0);
        self[n] = 0;

        check_real_binary("/bin/true");
        check_real_binary("/bin/sh");
        check_real_binary(self);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_valid_images),
                cmocka_unit_test(test_type_and_loads_max),
                cmocka_unit_test(test_no_notes),
                cmocka_unit_test(test_several_notes),
                cmocka_unit_test(test_note_align8),
                cmocka_unit_test(test_section_fallback),
                cmocka_unit_test(test_truncated_headers),
                cmocka_unit_test(test_bad_ident),
                cmocka_unit_test(test_phdr_table_bad),
                cmocka_unit_test(test_phdr_table_limit),
                cmocka_unit_test(test_phentsize_larger),
                cmocka_unit_test(test_broken_notes),
                cmocka_unit_test(test_note_past_segment),
                cmocka_unit_test(test_build_id_length),
                cmocka_unit_test(test_note_budget),
                cmocka_unit_test(test_vaddr),
                cmocka_unit_test(test_fd_crafted),
                cmocka_unit_test(test_fd_errors),
                cmocka_unit_test(test_fd_short_reads),
                cmocka_unit_test(test_fd_buffer_agree),
                cmocka_unit_test(test_mutations),
                cmocka_unit_test(test_fd_offsets_near_2p63),
                cmocka_unit_test(test_real_binaries),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
