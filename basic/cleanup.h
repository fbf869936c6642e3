/* Scope-bound cleanup helpers and ownership-transfer macros shared by every part of memmapd. */
#pragma once

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <dirent.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void freep(void *p) {
        free(*(void **) p);
}

/* close() must not clobber the errno a failing caller is about to return. */
static inline void closep(int *fd) {
        if (fd && *fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}

static inline void fclosep(FILE **f) {
        if (f && *f)
                fclose(*f);
}

static inline void closedirp(DIR **d) {
        if (d && *d)
                closedir(*d);
}

/* json-c's destructor, declared here so that code without json-c can include this header
 * (a compatible redeclaration where json-c's own header is included as well). */
struct json_object;
int json_object_put(struct json_object *obj);

static inline void json_object_putp(struct json_object **o) {
        if (o && *o)
                json_object_put(*o);
}

#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)
#define _cleanup_closedir_ _cleanup_(closedirp)
#define _cleanup_json_ _cleanup_(json_object_putp)

/* Declares a cleanup function for a type whose destructor accepts NULL. */
#define DEFINE_CLEANUP_FUNC(type, func)                  \
        static inline void func##p(type *p) {            \
                if (*p)                                  \
                        func(*p);                        \
        }

#define TAKE_PTR(p)                     \
        ({                              \
                __typeof__(p) _p_ = (p); \
                (p) = NULL;             \
                _p_;                    \
        })

#define TAKE_FD(fd)                     \
        ({                              \
                int _fd_ = (fd);        \
                (fd) = -1;              \
                _fd_;                   \
        })

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif
#ifndef MAX
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif

/* Retries a syscall expression while it fails with EINTR. */
#define RETRY_EINTR(expr)                                     \
        ({                                                    \
                __typeof__(expr) _r_;                         \
                do                                            \
                        _r_ = (expr);                         \
                while (_r_ < 0 && errno == EINTR);            \
                _r_;                                          \
        })
