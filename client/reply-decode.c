/* libmemctl's replies into its public structs: the codec's decoded types turned into them, and the arena their strings live in. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "cleanup.h"
#include "libmemctl.h"
#include "memmapd-codec.h"
#include "memmapd-decode.h"
#include "libmemctl-internal.h"

/* ------------------------------------------------------------------ arena */

#define ARENA_CHUNK_MIN ((size_t) 4096)
#define ARENA_CHUNK_MAX ((size_t) 1024 * 1024)

/* n bytes that live until arena_free(): NULL when out of memory. */
void *arena_alloc(struct arena_chunk **arena, size_t n) {
        struct arena_chunk *c = *arena;
        void *p;

        if (!c || c->size - c->used < n) {
                size_t size = c ? MIN(c->size * 2, ARENA_CHUNK_MAX) : ARENA_CHUNK_MIN;

                if (n > SIZE_MAX - sizeof(*c))
                        return NULL;
                size = MAX(size, n);
                c = malloc(sizeof(*c) + size);
                if (!c)
                        return NULL;
                *c = (struct arena_chunk) { .next = *arena, .size = size };
                *arena = c;
        }
        p = c->data + c->used;
        c->used += n;
        return p;
}

/* A NUL-terminated copy of the n bytes at s. */
char *arena_strndup(struct arena_chunk **arena, const char *s, size_t n) {
        char *p = n < SIZE_MAX ? arena_alloc(arena, n + 1) : NULL;

        if (p) {
                memcpy(p, s, n);
                p[n] = 0;
        }
        return p;
}

void arena_free(struct arena_chunk **arena) {
        struct arena_chunk *c, *next;

        for (c = *arena; c; c = next) {
                next = c->next;
                free(c);
        }
        *arena = NULL;
}

/* ------------------------------------------------------------------ reply decoding */

/* The protocol's name of each enum memctl_mapping_kind. */
#define _MEMCTL_KIND_NAMES (MEMCTL_KIND_SPECIAL + 1)
static const char *const kind_names[_MEMCTL_KIND_NAMES] = {
        [MEMCTL_KIND_ANONYMOUS] = "anonymous",
        [MEMCTL_KIND_FILE] = "file",
        [MEMCTL_KIND_HEAP] = "heap",
        [MEMCTL_KIND_STACK] = "stack",
        [MEMCTL_KIND_VDSO] = "vdso",
        [MEMCTL_KIND_VVAR] = "vvar",
        [MEMCTL_KIND_VSYSCALL] = "vsyscall",
        [MEMCTL_KIND_MEMFD] = "memfd",
        [MEMCTL_KIND_ANON_NAMED] = "anon_named",
        [MEMCTL_KIND_SHMEM_NAMED] = "shmem_named",
        [MEMCTL_KIND_SPECIAL] = "special",
};

/* The kind named by the len bytes at s. */
static int kind_from_string(const char *s, size_t len) {
        for (size_t i = 1; i < ELEMENTSOF(kind_names); i++)
                if (strlen(kind_names[i]) == len && memcmp(s, kind_names[i], len) == 0)
                        return (int) i;
        /* A kind of a newer daemon: kind_name still tells what it is. */
        return MEMCTL_KIND_UNKNOWN;
}

static const char *const reason_names[] = {
        [MEMCTL_REASON_UNMAPPED] = "unmapped",
        [MEMCTL_REASON_NO_ADDRESS_SPACE] = "no_address_space",
};

/* Why an unmapped result has no mapping, from the len bytes of the daemon's reason at s (NULL:
 * it gave none). A reason of a newer daemon is kept in the arena, for reason_name. */
static int result_set_reason(struct memctl_lookup_result *ret, const char *s, size_t len, struct arena_chunk **arena) {
        ret->reason = MEMCTL_REASON_UNMAPPED;
        ret->reason_name = NULL;
        if (!s)
                return 0;
        for (size_t i = 1; i < ELEMENTSOF(reason_names); i++)
                if (strlen(reason_names[i]) == len && memcmp(s, reason_names[i], len) == 0) {
                        ret->reason = (int) i;
                        ret->reason_name = reason_names[i];
                        return 0;
                }
        ret->reason = MEMCTL_REASON_OTHER;
        ret->reason_name = arena_strndup(arena, s, len);
        return ret->reason_name ? 0 : -ENOMEM;
}

/* A string the result keeps: json-c's own when borrowed, else decoded into the arena, or the
 * copy made of the same text last time (memo). */
static int keep_text(struct text_keep *k, struct text_memo *memo, const struct memmapd_text *t, const char **ret) {
        char *copy;

        if (k->borrow) {
                *ret = t->raw;
                return 0;
        }
        if (memo->copy && memo->raw_len == t->len && memcmp(memo->raw, t->raw, t->len) == 0) {
                *ret = memo->copy;
                return 0;
        }
        copy = arena_alloc(k->arena, t->len + 1);
        if (!copy)
                return -ENOMEM;
        (void) json_reader_copy_string(t->raw, t->len, t->escaped, copy);
        *memo = (struct text_memo) { .raw = t->raw, .raw_len = t->len, .copy = copy };
        *ret = copy;
        return 0;
}

/* A short name the protocol gives (a kind, a reason), decoded into buf (JSON_READER_SHORT_MAX
 * bytes) when escaped: its bytes, or NULL. */
static const char *short_text(const struct memmapd_text *t, char *buf, size_t *ret_len) {
        if (!t->escaped) {
                *ret_len = t->len;
                return t->raw;
        }
        if (t->len >= JSON_READER_SHORT_MAX)
                return NULL;
        *ret_len = json_reader_copy_string(t->raw, t->len, true, buf);
        return buf;
}

/* The build ID of hex (kept): checked and converted once for a run of mappings of one file. */
static int build_id_set(struct text_keep *k, struct memctl_mapping *m, const char *hex, const char *previous) {
        uint8_t bin[MEMMAPD_BUILD_ID_MAX];
        size_t n;
        uint8_t *copy;

        if (hex == previous && k->build_id.build_id) {
                m->build_id_hex = hex;
                m->build_id = k->build_id.build_id;
                m->build_id_size = k->build_id.build_id_size;
                return 0;
        }
        if (memmapd_parse_build_id(hex, strlen(hex), bin, &n) < 0)
                return -EPROTO;
        copy = arena_alloc(k->arena, n);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, bin, n);
        m->build_id_hex = hex;
        m->build_id = copy;
        m->build_id_size = n;
        k->build_id.build_id = copy;
        k->build_id.build_id_size = n;
        return 0;
}

/* The exact bytes of a name that is not valid UTF-8 (the protocol's name_hex). */
static int name_exact_set(struct text_keep *k, struct memctl_mapping *m, const struct memmapd_text *t) {
        struct text_memo memo = {};
        const char *hex;
        size_t l, path_len;
        char *exact;
        int r;

        r = keep_text(k, &memo, t, &hex);
        if (r < 0)
                return r;
        l = strlen(hex);
        exact = arena_alloc(k->arena, l / 2 + 1);
        if (!exact)
                return -ENOMEM;
        if (memmapd_parse_name_hex(hex, l, m->name, m->name ? strlen(m->name) : 0, m->path,
                                   m->path ? strlen(m->path) : 0, exact, &path_len) < 0)
                return -EPROTO;
        exact[l / 2] = 0;
        m->name_exact = exact;
        if (m->path) {
                m->path_exact = arena_strndup(k->arena, exact, path_len);
                if (!m->path_exact)
                        return -ENOMEM;
        }
        return 0;
}

int mapping_from_text(struct text_keep *k, const struct memmapd_mapping_text *t, struct memctl_mapping *m) {
        const char *kind, *hex = NULL, *previous = k->build_id.copy;
        char kind_buf[JSON_READER_SHORT_MAX];
        size_t kind_len;
        int r;

        *m = (struct memctl_mapping) {
                .size = sizeof(*m),
                .start = t->start,
                .end = t->end,
                .offset = t->offset,
                .inode = t->inode,
                .dev_major = t->dev_major,
                .dev_minor = t->dev_minor,
                .page_size = t->page_size,
                .flags = t->flags,
                .deleted = t->deleted,
        };
        perms_format(t->flags, m->perms);
        kind = short_text(&t->kind, kind_buf, &kind_len);
        if (!kind)
                return -EPROTO;
        m->kind = kind_from_string(kind, kind_len);
        /* The protocol's names need no copy. */
        m->kind_name = m->kind != MEMCTL_KIND_UNKNOWN ? kind_names[m->kind]
                       : k->borrow                    ? kind
                                                      : arena_strndup(k->arena, kind, kind_len);
        if (!m->kind_name)
                return -ENOMEM;
        if ((t->has_name && (r = keep_text(k, &k->name, &t->name, &m->name)) < 0) ||
            (t->has_path && (r = keep_text(k, &k->name, &t->path, &m->path)) < 0))
                return r;
        m->name_exact = m->name;
        m->path_exact = m->path;
        if (t->has_name_hex && (r = name_exact_set(k, m, &t->name_hex)) < 0)
                return r;
        if (t->has_build_id && ((r = keep_text(k, &k->build_id, &t->build_id, &hex)) < 0 ||
                                (r = build_id_set(k, m, hex, previous)) < 0))
                return r;
        return 0;
}

int result_from_text(struct arena_chunk **arena, const struct memmapd_result_text *t, uint64_t address,
                     struct memctl_lookup_result *ret) {
        char reason_buf[JSON_READER_SHORT_MAX];
        const char *reason = NULL;
        size_t reason_len = 0;

        if (t->address != address)
                return -EPROTO;
        *ret = (struct memctl_lookup_result) {
                .size = sizeof(*ret),
                .address = address,
                .mapping = MEMCTL_NO_MAPPING,
        };
        if (t->mapping == UINT64_MAX) {
                /* not mapped, whatever the (possibly newer) reason */
                if (t->has_reason && !(reason = short_text(&t->reason, reason_buf, &reason_len)))
                        return -EPROTO;
                return result_set_reason(ret, reason, reason_len, arena);
        }
        /* The index is checked against the mappings when they are all known. */
        ret->mapping = (size_t) t->mapping;
        if ((uint64_t) ret->mapping != t->mapping)
                return -EPROTO;
        ret->has_file_offset = t->has_file_offset;
        ret->has_elf_vaddr = t->has_elf_vaddr;
        ret->file_offset = t->file_offset;
        ret->elf_vaddr = t->elf_vaddr;
        if (t->has_symbol) {
                char *name = arena_alloc(arena, t->symbol.len + 1);

                if (!name)
                        return -ENOMEM;
                (void) json_reader_copy_string(t->symbol.raw, t->symbol.len, t->symbol.escaped, name);
                ret->symbol = name;
                ret->symbol_offset = t->symbol_offset;
                ret->symbol_size_unknown = t->symbol_size_unknown;
        }
        return 0;
}

int parse_mapping(struct json_object *o, struct arena_chunk **arena, struct memctl_mapping *m) {
        struct text_keep k = { .arena = arena, .borrow = true };
        struct memmapd_mapping_text t;
        int r;

        r = memmapd_mapping_from_json(o, &t);
        if (r < 0)
                return r;
        return mapping_from_text(&k, &t, m);
}

/* ret_kernel_thread may be NULL. */
int parse_process(struct json_object *params, pid_t pid, uint64_t start_time,
                  pid_t *ret_pid, uint64_t *ret_start_time, bool *ret_kernel_thread) {
        struct memmapd_process p;

        if (memmapd_process_from_json(memmapd_json_member(params, "process"), &p) < 0)
                return -EPROTO;
        /* The daemon answers about the process we asked about, or not at all: asked about a
         * thread id, about its thread group (p.pid is then the thread group id). */
        if (p.pid == 0 || p.pid > INT32_MAX || (start_time != 0 && p.start_time != start_time))
                return -EPROTO;
        (void) pid;
        *ret_pid = (pid_t) p.pid;
        *ret_start_time = p.start_time;
        if (ret_kernel_thread)
                *ret_kernel_thread = p.kernel_thread;
        return 0;
}

bool parse_process_exited(struct json_object *params) {
        struct memmapd_process p;

        return memmapd_process_from_json(memmapd_json_member(params, "process"), &p) >= 0 && p.exited;
}

void mapping_table_done(struct mapping_table *t) {
        free(t->items);
        json_object_put(t->parameters);
        arena_free(&t->arena);
}

/* Decodes the process and mappings members shared by ListMappings and Lookup replies,
 * taking over params. */
int mapping_table_parse(struct json_object *params, pid_t pid, uint64_t start_time,
                               struct mapping_table *t) {
        struct json_object *a;
        size_t n;
        int r;

        *t = (struct mapping_table) { .parameters = params };

        r = parse_process(params, pid, start_time, &t->pid, &t->start_time, &t->kernel_thread);
        if (r < 0)
                return r;
        t->exited = parse_process_exited(params);

        a = memmapd_json_member(params, "mappings");
        if (!a || !json_object_is_type(a, json_type_array))
                return -EPROTO;
        n = json_object_array_length(a);
        t->items = calloc(n > 0 ? n : 1, sizeof(*t->items));
        t->allocated = n > 0 ? n : 1;
        if (!t->items)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                r = parse_mapping(json_object_array_get_idx(a, i), &t->arena, &t->items[i]);
                if (r < 0)
                        return r;
        }
        t->n = n;
        return 0;
}

/* Copies src (a public struct of src_size bytes that starts with size_t size) into ret as
 * the caller's ret->size asks: see "ABI growth" in memctl.h. */
int copy_sized(void *ret, const void *src, size_t src_size, size_t min_size) {
        size_t size;

        memcpy(&size, ret, sizeof(size));
        if (size < min_size)
                return -EINVAL;
        memcpy((char *) ret + sizeof(size_t), (const char *) src + sizeof(size_t),
               MIN(size, src_size) - sizeof(size_t));
        if (size > src_size)
                memset((char *) ret + src_size, 0, size - src_size);
        return 0;
}

int mapping_table_get(const struct mapping_table *t, size_t index, struct memctl_mapping *ret) {
        if (!ret)
                return -EINVAL;
        if (index >= t->n)
                return -ERANGE;
        return copy_sized(ret, &t->items[index], sizeof(t->items[index]), MAPPING_SIZE_0_1);
}

int process_get(const struct mapping_table *t, pid_t *ret_pid, uint64_t *ret_start_time) {
        if (ret_pid)
                *ret_pid = t->pid;
        if (ret_start_time)
                *ret_start_time = t->start_time;
        return 0;
}


int process_info_get(const struct mapping_table *t, struct memctl_process *ret) {
        struct memctl_process p = {
                .size = sizeof(p),
                .pid = t->pid,
                .start_time = t->start_time,
                .kernel_thread = t->kernel_thread,
                .exited = t->exited,
        };

        if (!ret)
                return -EINVAL;
        return copy_sized(ret, &p, sizeof(p), PROCESS_SIZE_0_3);
}
