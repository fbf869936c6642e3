/* Fuzz target: the ELF reader (build ID notes and the PT_LOAD table) on hostile images, from a
 * buffer and from a file (which must agree), and elf_info_vaddr() on what it finds, checked
 * against a plain reimplementation of its documented rule. The input is the ELF image. */
#include <elf.h>
#include <errno.h>
#include <string.h>
#include <sys/types.h> /* ssize_t, which mapping.h uses without including it */

#include "elf-reader.h"
#include "fuzz.h"

#define PAGE UINT64_C(4096)

static bool info_equal(const struct elf_info *a, const struct elf_info *b) {
        if (a->elf_class != b->elf_class || a->type != b->type || a->build_id_len != b->build_id_len ||
            a->n_loads != b->n_loads)
                return false;
        if (memcmp(a->build_id, b->build_id, a->build_id_len) != 0)
                return false;
        for (size_t i = 0; i < a->n_loads; i++) {
                const struct elf_load *x = &a->loads[i], *y = &b->loads[i];

                if (x->offset != y->offset || x->vaddr != y->vaddr || x->filesz != y->filesz ||
                    x->memsz != y->memsz || x->flags != y->flags)
                        return false;
        }
        return true;
}

/* The documented rule: the first PT_LOAD whose file range holds the offset, else the first whose
 * page-rounded range does (end clamped to 2^64 - 1); vaddr = offset - p_offset + p_vaddr,
 * -ENOENT when it wraps. A load whose result wraps is passed over, not fatal. */
static int ref_vaddr(const struct elf_info *info, uint64_t off, uint64_t *ret) {
        for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < info->n_loads; i++) {
                        const struct elf_load *l = &info->loads[i];
                        unsigned __int128 start = l->offset, end = (unsigned __int128) l->offset + l->filesz;
                        __int128 v;

                        if (pass == 1) {
                                start &= ~(unsigned __int128) (PAGE - 1);
                                end = (end + PAGE - 1) & ~(unsigned __int128) (PAGE - 1);
                                if (end > UINT64_MAX)
                                        end = UINT64_MAX;
                        }
                        if (off < start || off >= end)
                                continue;
                        v = (__int128) off - (__int128) l->offset + (__int128) l->vaddr;
                        if (v < 0 || v > (__int128) UINT64_MAX)
                                continue;
                        *ret = (uint64_t) v;
                        return 0;
                }
        return -ENOENT;
}

static void check_vaddr(const struct elf_info *info, uint64_t off) {
        uint64_t got = 0x5a5a5a5a5a5a5a5aULL, want = 0;
        int r = elf_info_vaddr(info, off, &got), rr = ref_vaddr(info, off, &want);

        FUZZ_CHECK(r == rr);
        FUZZ_CHECK(got == (r == 0 ? want : 0x5a5a5a5a5a5a5a5aULL));
}

static uint64_t read_u64(const uint8_t *data, size_t size, size_t at) {
        uint64_t v = 0;

        if (at < size)
                memcpy(&v, data + at, size - at < sizeof(v) ? size - at : sizeof(v));
        return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct elf_info info, saved, from_fd;
        int r, r_fd;

        memset(&info, 0xa5, sizeof(info));
        saved = info;
        r = elf_info_from_buffer(data, size, &info);
        FUZZ_CHECK(r == 0 || r == -ENOEXEC || r == -ENOMEM);
        if (r < 0)
                FUZZ_CHECK(memcmp(&info, &saved, sizeof(info)) == 0);

        /* The file variant reads the same bytes through pread(). */
        memset(&from_fd, 0x5a, sizeof(from_fd));
        r_fd = elf_info_from_fd(fuzz_memfd(data, size), &from_fd);
        if (r == -ENOMEM || r_fd == -ENOMEM)
                return 0;
        FUZZ_CHECK(r_fd == r);
        if (r < 0)
                return 0;
        FUZZ_CHECK(info_equal(&info, &from_fd));

        FUZZ_CHECK(size >= EI_NIDENT && memcmp(data, ELFMAG, SELFMAG) == 0);
        FUZZ_CHECK(info.elf_class == ELFCLASS32 || info.elf_class == ELFCLASS64);
        FUZZ_CHECK(info.elf_class == data[EI_CLASS]);
        FUZZ_CHECK(info.build_id_len <= MAPPING_BUILD_ID_MAX);
        FUZZ_CHECK(info.n_loads <= ELF_LOADS_MAX);
        /* A build ID is copied from the image, after a "GNU\0" owner. */
        if (info.build_id_len > 0) {
                FUZZ_CHECK(memmem(data, size, info.build_id, info.build_id_len));
                FUZZ_CHECK(memmem(data, size, ELF_NOTE_GNU, sizeof(ELF_NOTE_GNU)));
        }
        for (size_t i = 0; i < info.n_loads && info.elf_class == ELFCLASS32; i++)
                FUZZ_CHECK(info.loads[i].offset <= UINT32_MAX && info.loads[i].vaddr <= UINT32_MAX &&
                           info.loads[i].filesz <= UINT32_MAX && info.loads[i].memsz <= UINT32_MAX);

        /* elf_info_vaddr() at the edges of every load, and at offsets taken from the input. */
        check_vaddr(&info, 0);
        check_vaddr(&info, UINT64_MAX);
        for (size_t i = 0; i < info.n_loads; i++) {
                const struct elf_load *l = &info.loads[i];
                uint64_t edges[] = {
                        l->offset, l->offset - 1, l->offset + l->filesz, l->offset + l->filesz - 1,
                        l->offset & ~(PAGE - 1), (l->offset & ~(PAGE - 1)) - 1,
                        ((l->offset + l->filesz + PAGE - 1) & ~(PAGE - 1)) - 1,
                        (l->offset + l->filesz + PAGE - 1) & ~(PAGE - 1), l->vaddr,
                };

                for (size_t k = 0; k < sizeof(edges) / sizeof(edges[0]); k++)
                        check_vaddr(&info, edges[k]);
        }
        for (size_t at = 0; at < 64 && at < size; at += 8)
                check_vaddr(&info, read_u64(data, size, size - 1 - at));

        FUZZ_CHECK(elf_info_vaddr(NULL, 0, &(uint64_t) { 0 }) == -EINVAL);
        return 0;
}
