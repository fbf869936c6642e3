/* The error replies every method writes: InvalidParameter, LimitExceeded, errors about a pid, InternalError (logged once per errno). */

#include <stdatomic.h>
#include <string.h>

#include "log.h"
#include "methods-internal.h"

const char *reply_error_simple(struct json_writer *w, const char *error, const char *key, const char *value) {
        varlink_reply_begin(w, error, false);
        if (key) {
                json_writer_key(w, key);
                json_writer_string(w, value);
        }
        varlink_message_end(w);
        return error;
}

const char *reply_invalid_parameter(struct json_writer *w, const char *name) {
        varlink_reply_invalid_parameter(w, name);
        return VARLINK_ERROR_INVALID_PARAMETER;
}

const char *reply_pid_error(struct json_writer *w, const char *error, int64_t pid) {
        varlink_reply_begin(w, error, false);
        json_writer_key(w, "pid");
        json_writer_int(w, pid);
        varlink_message_end(w);
        return error;
}

const char *reply_limit(struct json_writer *w, const char *limit, uint64_t max) {
        varlink_reply_begin(w, MEMMAPD_ERROR_LIMIT_EXCEEDED, false);
        json_writer_key(w, "limit");
        json_writer_string(w, limit);
        json_writer_key(w, "max");
        json_writer_uint(w, max);
        varlink_message_end(w);
        return MEMMAPD_ERROR_LIMIT_EXCEEDED;
}

/* Which errnos an InternalError was logged for: each is worth a warning once (it says the
 * daemon met something it does not handle), not once per call. */
static atomic_ullong internal_logged[4];

const char *reply_internal(struct json_writer *w, int error) {
        unsigned e = (unsigned) (error < 0 ? -error : error);

        if (e < 256 && !(atomic_fetch_or(&internal_logged[e / 64], 1ull << (e % 64)) & (1ull << (e % 64))))
                log_warning_errno(-(int) e, "Answering InternalError: %s (logged once per error)", strerror((int) e));
        return reply_error_simple(w, MEMMAPD_ERROR_INTERNAL, "message", strerror((int) e));
}

bool known_params_only(struct json_object *params, const char *const *known, const char **ret_bad) {
        const char *bad = varlink_params_unknown(params, known);

        if (bad)
                *ret_bad = bad;
        return !bad;
}

