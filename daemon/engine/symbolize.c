/* The symbols of a lookup's answers: tables from the cache, else read on the runner. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "elf-reader.h"
#include "hex.h"
#include "symbol-cache.h"
#include "symbolize.h"
#include "vdso-cache.h"

int symbolize_debug_path(const char *dir, const uint8_t *id, size_t id_len, char *buf, size_t size) {
        char hex[2 * MAPPING_BUILD_ID_MAX + 1];
        int n;

        if (id_len < 2 || id_len > MAPPING_BUILD_ID_MAX || !dir)
                return -EINVAL;
        format_hex_bytes(id, id_len, hex);
        n = snprintf(buf, size, "%s/.build-id/%.2s/%s.debug", dir, hex, hex + 2);
        return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : 0;
}

/* The debug file's table, when the file is there, is a regular file carrying build ID id and
 * has a .symtab; else NULL. Debian's -dbgsym packages install them there. */
static struct symtab *read_debug_file(const uint8_t *id, size_t id_len, const char *debug_dir) {
        _cleanup_close_ int fd = -1;
        struct symtab *t = NULL;
        struct elf_info info;
        char path[4096];
        struct stat st;

        if (!debug_dir || !debug_dir[0] || symbolize_debug_path(debug_dir, id, id_len, path, sizeof(path)) < 0)
                return NULL;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return NULL;
        if (elf_info_from_fd(fd, &info) < 0 || info.build_id_len != id_len || memcmp(info.build_id, id, id_len) != 0)
                return NULL;
        if (symtab_from_fd(fd, &t) < 0)
                return NULL;
        if (symtab_origin(t) != SYMTAB_SYMTAB)
                return symtab_unref(t);
        return t;
}

int symbolize_read_file(int fd, const uint8_t *id, size_t id_len, const char *debug_dir, struct symtab **ret) {
        struct symtab *t = NULL, *debug;
        int r;

        r = symtab_from_fd(fd, &t);
        if (r < 0)
                return r;
        if (symtab_origin(t) != SYMTAB_SYMTAB && id_len > 0) {
                debug = read_debug_file(id, id_len, debug_dir);
                if (debug) {
                        symtab_unref(t);
                        t = debug;
                }
        }
        *ret = t;
        return 0;
}

/* The read of one file's table: it owns everything it touches (a reader whose caller stopped
 * waiting goes on until its read returns, and keeps what it read for the next request). */
struct symtab_job {
        int proc_fd;
        struct mapping m;               /* name owned */
        struct symbol_key key;
        struct elf_cache_key file;      /* the content the facts were read from */
        /* The facts were kept, not read (a process that is gone): the file opened must carry
         * their build ID, and its own identity keys the table. */
        bool key_from_file;
        uint8_t build_id[MAPPING_BUILD_ID_MAX];
        size_t build_id_len;
        char *debug_dir;
        struct symbol_cache *cache;     /* a reference */
        struct symtab *out;
        int result;
};

static void symtab_job_free(void *data) {
        struct symtab_job *j = data;

        if (!j)
                return;
        closep(&j->proc_fd);
        mapping_done(&j->m);
        free(j->debug_dir);
        symbol_cache_free(j->cache);
        symtab_unref(j->out);
        free(j);
}

static int symtab_job_read(struct symtab_job *j) {
        const struct process p = { .pid = 0, .pidfd = -1, .proc_fd = j->proc_fd, .maps_fd = -1 };
        _cleanup_close_ int fd = -1;
        struct elf_cache_key key;
        struct statx stx;
        int r;

        fd = facts_open_mapped_file(&p, &j->m, &stx);
        if (fd < 0)
                return fd;
        /* The table must be the one of the content the build ID and elf_vaddr came from. */
        elf_cache_key_from_statx(&stx, &key);
        if (j->key_from_file) {
                struct elf_info info;

                r = elf_info_from_fd(fd, &info);
                if (r < 0 || info.build_id_len != j->build_id_len ||
                    memcmp(info.build_id, j->build_id, j->build_id_len) != 0)
                        return -ESTALE;
                j->file = key;
                symbol_key_init(&j->key, j->build_id, j->build_id_len, &key, stx.stx_uid);
        }
        if (memcmp(&key, &j->file, sizeof(key)) != 0 || stx.stx_uid != j->key.owner)
                return -ESTALE;
        /* Opened with this client's access: now the kept table may answer. */
        j->out = symbol_cache_get(j->cache, &j->key);
        if (j->out)
                return 0;
        r = symbolize_read_file(fd, j->build_id, j->build_id_len, j->debug_dir, &j->out);
        if (r < 0)
                return r;
        /* Failing to keep it costs a read later, nothing else. */
        (void) symbol_cache_put(j->cache, &j->key, j->out);
        return 0;
}

static int symtab_job_run(void *data) {
        struct symtab_job *j = data;

        j->result = symtab_job_read(j);
        return 0;
}

/* The table of mapping m with facts f: the cache's, else read on the runner; NULL when there is
 * none for this request. -ENOMEM only. */
static int file_table(const struct facts_config *cfg, const struct process *p, const struct mapping *m,
                      const struct layout_file *f, unsigned *budget_ms, struct symtab **ret) {
        struct symtab_job *j;
        struct symbol_key key;
        const uint8_t *id;
        size_t id_len;
        int r;

        *ret = NULL;
        if (!f || f->result < 0 || !f->info.elf_class)
                return 0;
        id = layout_file_build_id(f, &id_len);
        /* Facts without the file's identity were kept by the capture: only their build ID can
         * tell the file opened now is the one that was mapped. */
        if (!f->has_key && id_len == 0)
                return 0;
        symbol_key_init(&key, id, id_len, &f->key, f->owner);
        /* The facts may be another client's read (a kept layout): a table is served without
         * this client opening the file only where anyone may read it (the system's libraries);
         * else the job opens it with this client's access first, then takes the kept table. */
        if (f->has_key && (f->mode & S_IROTH)) {
                *ret = symbol_cache_get(cfg->symbol_cache, &key);
                if (*ret)
                        return 0;
        }

        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        j->proc_fd = -1;
        j->key = key;
        j->file = f->key;
        j->key_from_file = !f->has_key;
        if (id_len > 0)
                memcpy(j->build_id, id, id_len);
        j->build_id_len = id_len;
        j->cache = symbol_cache_ref(cfg->symbol_cache);
        r = facts_job_copy_target(p, m, &j->m, &j->proc_fd);
        if (r >= 0 && cfg->debug_dir && !(j->debug_dir = strdup(cfg->debug_dir)))
                r = -ENOMEM;
        if (r < 0) {
                symtab_job_free(j);
                return r == -ENOMEM ? r : 0;
        }
        if (!cfg->run_blocking)
                (void) symtab_job_run(j);
        else if (cfg->run_blocking(cfg->run_blocking_userdata, symtab_job_run, j, symtab_job_free, budget_ms) < 0)
                return 0;       /* the job belongs to the runner now */
        if (j->result >= 0)
                *ret = TAKE_PTR(j->out);
        symtab_job_free(j);
        return 0;
}

/* The vdso's table, from its image (the cached one for its build ID where the cache holds it,
 * see facts_read_vdso()): a few dozen symbols, parsed per request. */
static struct symtab *vdso_table(const struct facts_config *cfg, const struct process *p, const struct mapping *m) {
        _cleanup_free_ uint8_t *image = NULL;
        struct symtab *t = NULL;
        struct elf_info info;

        if (facts_read_vdso(cfg, p, m, &info, &image) < 0 || !info.elf_class)
                return NULL;
        if (symtab_from_buffer(image, m->end - m->start, &t) < 0)
                return NULL;
        return t;
}

int symbolize(const struct facts_config *cfg, const struct process *p, const struct layout *l,
              const struct layout_result *results, size_t n, struct symbols *ret) {
        struct symbols s = {};
        unsigned budget_ms = cfg->budget_ms;
        bool *used = NULL;
        int r = 0;

        s.n_tables = l->mappings.n;
        s.tables = calloc(MAX(s.n_tables, (size_t) 1), sizeof(*s.tables));
        s.answers = calloc(MAX(n, (size_t) 1), sizeof(*s.answers));
        used = calloc(MAX(s.n_tables, (size_t) 1), sizeof(*used));
        if (!s.tables || !s.answers || !used) {
                r = -ENOMEM;
                goto fail;
        }
        for (size_t k = 0; k < n; k++)
                if (results[k].mapping >= 0 && (size_t) results[k].mapping < s.n_tables && results[k].has_elf_vaddr)
                        used[results[k].mapping] = true;

        for (size_t i = 0; i < s.n_tables; i++) {
                const struct mapping *m = &l->mappings.items[i];
                const struct layout_file *f = layout_file_of(l, i);

                if (!used[i])
                        continue;
                if (m->kind == MAPPING_KIND_VDSO) {
                        s.tables[i] = vdso_table(cfg, p, m);
                        continue;
                }
                /* A library's mappings are adjacent and share their facts: one table. */
                if (i > 0 && f && layout_file_of(l, i - 1) == f && s.tables[i - 1]) {
                        s.tables[i] = symtab_ref(s.tables[i - 1]);
                        continue;
                }
                r = file_table(cfg, p, m, f, &budget_ms, &s.tables[i]);
                if (r < 0)
                        goto fail;
        }

        for (size_t k = 0; k < n; k++) {
                const struct layout_result *res = &results[k];
                struct symtab_match match;
                struct symtab *t;

                if (res->mapping < 0 || (size_t) res->mapping >= s.n_tables || !res->has_elf_vaddr)
                        continue;
                t = s.tables[res->mapping];
                if (t && symtab_lookup(t, res->elf_vaddr, &match) > 0)
                        s.answers[k] = (struct symbol_answer) {
                                .name = match.name,
                                .offset = match.offset,
                                .size_unknown = match.size_unknown,
                        };
        }
        free(used);
        *ret = s;
        return 0;

fail:
        free(used);
        symbols_done(&s);
        return r;
}

void symbols_done(struct symbols *s) {
        for (size_t i = 0; s->tables && i < s->n_tables; i++)
                symtab_unref(s->tables[i]);
        free(s->tables);
        free(s->answers);
        *s = (struct symbols) {};
}
