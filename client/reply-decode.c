/* libmemctl's general reply decoding (through json-c) into the public structs, and the arena their strings live in. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "cleanup.h"
#include "hex.h"
#include "libmemctl.h"
#include "memmapd-codec.h"
#include "number.h"
#include "utf8.h"
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

static void arena_free(struct arena_chunk **arena) {
        struct arena_chunk *c, *next;

        for (c = *arena; c; c = next) {
                next = c->next;
                free(c);
        }
        *arena = NULL;
}

/* ------------------------------------------------------------------ reply decoding */

/* A member of o; absent and null are both NULL. */
struct json_object *member(struct json_object *o, const char *key) {
        struct json_object *v = NULL;

        if (!json_object_object_get_ex(o, key, &v))
                return NULL;
        return v;
}

int get_string(struct json_object *o, const char *key, bool required, const char **ret) {
        struct json_object *v = member(o, key);
        const char *s;

        if (!v)
                return required ? -EPROTO : 0;
        if (!json_object_is_type(v, json_type_string))
                return -EPROTO;
        s = json_object_get_string(v);
        /* An escaped NUL would truncate the string silently. */
        if (strlen(s) != (size_t) json_object_get_string_len(v))
                return -EPROTO;
        *ret = s;
        return 0;
}

int get_uint(struct json_object *o, const char *key, bool required, uint64_t *ret) {
        struct json_object *v = member(o, key);

        if (!v)
                return required ? -EPROTO : 0;
        if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
                return -EPROTO;
        *ret = json_object_get_uint64(v);
        return 0;
}

static int get_bool(struct json_object *o, const char *key, bool *ret) {
        struct json_object *v = member(o, key);

        if (!v)
                return 0;
        if (!json_object_is_type(v, json_type_boolean))
                return -EPROTO;
        *ret = json_object_get_boolean(v);
        return 0;
}

/* An address, offset or size: "0x" and hex digits, nothing else. */
int get_hex(struct json_object *o, const char *key, bool required, uint64_t *ret, bool *ret_present) {
        const char *s = NULL;
        int r;

        r = get_string(o, key, required, &s);
        if (r < 0)
                return r;
        if (!s)
                return 0;
        if (s[0] != '0' || s[1] != 'x' || parse_u64(s, ret) < 0)
                return -EPROTO;
        if (ret_present)
                *ret_present = true;
        return 0;
}

const char *const kind_names[_MEMCTL_KIND_NAMES] = {
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
int kind_from_string(const char *s, size_t len) {
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
int result_set_reason(struct memctl_lookup_result *ret, const char *s, size_t len, struct arena_chunk **arena) {
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

/* How many bytes of exact (exact_len of them) make the first lossy_len bytes of lossy, exact's
 * form in JSON text as the daemon writes it (each byte outside well-formed UTF-8 as U+FFFD):
 * -EPROTO when they do not match, or lossy_len ends inside a character. */
static int lossy_prefix(const char *exact, size_t exact_len, const char *lossy, size_t lossy_len, size_t *ret) {
        size_t i = 0, j = 0;

        while (j < lossy_len) {
                size_t n, want_len;
                const char *want;

                if (i >= exact_len)
                        return -EPROTO;
                n = (uint8_t) exact[i] < 0x80 ? 1 : utf8_sequence_length((const uint8_t *) exact + i, exact_len - i);
                want = n > 0 ? exact + i : "\xef\xbf\xbd";
                want_len = n > 0 ? n : 3;
                if (lossy_len - j < want_len || memcmp(lossy + j, want, want_len) != 0)
                        return -EPROTO;
                i += n > 0 ? n : 1;
                j += want_len;
        }
        *ret = i;
        return 0;
}

/* The exact bytes of a name that is not valid UTF-8 (the protocol's name_hex): checked against
 * name, which holds them with U+FFFD for the invalid ones, and path, a prefix of name. */
static int name_exact_set(struct arena_chunk **arena, struct memctl_mapping *m, const char *hex) {
        size_t l = strlen(hex), n;
        char *exact;

        if (!m->name || l == 0 || l % 2 != 0)
                return -EPROTO;
        exact = arena_alloc(arena, l / 2 + 1);
        if (!exact)
                return -ENOMEM;
        /* No NUL: the kernel's names are C strings. */
        if (unhex_bytes(hex, l, false, (uint8_t *) exact) < 0 || memchr(exact, 0, l / 2))
                return -EPROTO;
        exact[l / 2] = 0;
        if (lossy_prefix(exact, l / 2, m->name, strlen(m->name), &n) < 0 || n != l / 2)
                return -EPROTO;
        m->name_exact = exact;
        if (m->path) {
                size_t pl = strlen(m->path);

                if (strncmp(m->name, m->path, pl) != 0 || lossy_prefix(exact, l / 2, m->name, pl, &n) < 0)
                        return -EPROTO;
                m->path_exact = arena_strndup(arena, exact, n);
                if (!m->path_exact)
                        return -ENOMEM;
        }
        return 0;
}

int parse_mapping(struct json_object *o, struct arena_chunk **arena, struct memctl_mapping *m) {
        const char *perms = NULL, *dev = NULL, *build_id = NULL, *name_hex = NULL;
        int r;

        if (!json_object_is_type(o, json_type_object))
                return -EPROTO;

        *m = (struct memctl_mapping) { .size = sizeof(*m) };

        if ((r = get_hex(o, "start", true, &m->start, NULL)) < 0 ||
            (r = get_hex(o, "end", true, &m->end, NULL)) < 0 ||
            (r = get_hex(o, "offset", true, &m->offset, NULL)) < 0 ||
            (r = get_string(o, "perms", true, &perms)) < 0 ||
            (r = get_string(o, "dev", true, &dev)) < 0 ||
            (r = get_uint(o, "inode", true, &m->inode)) < 0 ||
            (r = get_uint(o, "page_size", false, &m->page_size)) < 0 ||
            (r = get_string(o, "kind", true, &m->kind_name)) < 0 ||
            (r = get_string(o, "name", false, &m->name)) < 0 ||
            (r = get_string(o, "name_hex", false, &name_hex)) < 0 ||
            (r = get_string(o, "path", false, &m->path)) < 0 ||
            (r = get_bool(o, "deleted", &m->deleted)) < 0 ||
            (r = get_string(o, "build_id", false, &build_id)) < 0)
                return r;
        m->kind = kind_from_string(m->kind_name, strlen(m->kind_name));
        return mapping_finish(arena, m, perms, dev, build_id, name_hex);
}

/* Checks a build ID (lowercase hex, as the protocol promises) and sets m's build ID to it:
 * hex stays where it is, its binary form goes to the arena. */
int build_id_set(struct arena_chunk **arena, struct memctl_mapping *m, const char *hex) {
        size_t l = strlen(hex);
        uint8_t *bin;

        if (l == 0 || l % 2 != 0 || l / 2 > MEMMAPD_BUILD_ID_MAX)
                return -EPROTO;
        bin = arena_alloc(arena, l / 2);
        if (!bin)
                return -ENOMEM;
        if (unhex_bytes(hex, l, true, bin) < 0)
                return -EPROTO;
        m->build_id_hex = hex;
        m->build_id = bin;
        m->build_id_size = l / 2;
        return 0;
}

/* What both decoders check and derive once a mapping's members are read (m->kind is set). */
int mapping_finish(struct arena_chunk **arena, struct memctl_mapping *m, const char *perms, const char *dev,
                   const char *build_id, const char *name_hex) {
        int r;

        if (m->start >= m->end)
                return -EPROTO;
        if (strlen(perms) != 4 || memmapd_parse_perms(perms, &m->flags) < 0)
                return -EPROTO;
        memcpy(m->perms, perms, 5);
        r = memmapd_parse_dev(&dev, 0, &m->dev_major, &m->dev_minor);
        if (r < 0)
                return r;
        m->name_exact = m->name;
        m->path_exact = m->path;
        if (name_hex && (r = name_exact_set(arena, m, name_hex)) < 0)
                return r;
        return build_id ? build_id_set(arena, m, build_id) : 0;
}

/* ret_kernel_thread may be NULL. */
int parse_process(struct json_object *params, pid_t pid, uint64_t start_time,
                  pid_t *ret_pid, uint64_t *ret_start_time, bool *ret_kernel_thread) {
        struct json_object *p = member(params, "process");
        uint64_t reply_pid, reply_start_time;
        bool kernel_thread = false;

        if (!p || !json_object_is_type(p, json_type_object))
                return -EPROTO;
        if (get_uint(p, "pid", true, &reply_pid) < 0 ||
            get_uint(p, "start_time", true, &reply_start_time) < 0 ||
            get_bool(p, "kernel_thread", &kernel_thread) < 0)
                return -EPROTO;
        /* The daemon answers about the process we asked about, or not at all: asked about a
         * thread id, about its thread group (reply_pid is then the thread group id). */
        if (reply_pid == 0 || reply_pid > INT32_MAX || (start_time != 0 && reply_start_time != start_time))
                return -EPROTO;
        (void) pid;
        *ret_pid = (pid_t) reply_pid;
        *ret_start_time = reply_start_time;
        if (ret_kernel_thread)
                *ret_kernel_thread = kernel_thread;
        return 0;
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

        a = member(params, "mappings");
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
        };

        if (!ret)
                return -EINVAL;
        return copy_sized(ret, &p, sizeof(p), PROCESS_SIZE_0_3);
}
