/* Varlink messages: decoding calls and replies, writing them, and typed parameter access. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json_object.h>

#include "json-writer.h"

#define VARLINK_ERROR_METHOD_NOT_FOUND "org.varlink.service.MethodNotFound"
#define VARLINK_ERROR_METHOD_NOT_IMPLEMENTED "org.varlink.service.MethodNotImplemented"
#define VARLINK_ERROR_INTERFACE_NOT_FOUND "org.varlink.service.InterfaceNotFound"
#define VARLINK_ERROR_INVALID_PARAMETER "org.varlink.service.InvalidParameter"
#define VARLINK_ERROR_PERMISSION_DENIED "org.varlink.service.PermissionDenied"
#define VARLINK_ERROR_EXPECTED_MORE "org.varlink.service.ExpectedMore"

/* json-c nests no deeper than this by default in our decoders. */
#define VARLINK_JSON_DEPTH_DEFAULT 32

struct varlink_call {
        char *method;                   /* "interface.Method" */
        struct json_object *parameters; /* always an object: {} when omitted or null */
        bool more;
        bool oneway;
        bool upgrade;
};

/* Decodes one message (msg[len] must be NUL; a NUL inside msg is invalid). Returns 0;
 * -EBADMSG when it is not JSON, not an object, nests deeper than max_depth, or "method" is
 * missing or not a string of the form interface.Method; -EINVAL with *ret_bad_field set
 * ("parameters", "more", "oneway", "upgrade") when a known field has the wrong type.
 * Unknown top-level fields are ignored, as the Varlink spec asks. */
int varlink_call_parse(const char *msg, size_t len, unsigned max_depth,
                       struct varlink_call *ret, const char **ret_bad_field);
void varlink_call_done(struct varlink_call *c);

struct varlink_reply {
        char *error;                    /* NULL on success */
        struct json_object *parameters; /* always an object */
        bool continues;
};

/* Decodes a reply, as varlink_call_parse() does a call. */
int varlink_reply_parse(const char *msg, size_t len, unsigned max_depth, struct varlink_reply *ret);
void varlink_reply_done(struct varlink_reply *r);

/* Starts a call: writes {"method":METHOD[,"more":true][,"oneway":true],"parameters":{
 * and leaves the writer inside the parameters object; end with varlink_message_end(). */
void varlink_call_begin(struct json_writer *w, const char *method, bool more, bool oneway);

/* Starts a reply: {["error":ERROR,]["continues":true,]"parameters":{ (error may be NULL). */
void varlink_reply_begin(struct json_writer *w, const char *error, bool continues);

/* Closes the parameters object and the message, and appends the NUL terminator. */
void varlink_message_end(struct json_writer *w);

/* A whole error reply whose parameters are {"parameter": name} (InvalidParameter) or {}. */
void varlink_reply_invalid_parameter(struct json_writer *w, const char *name);

/* Typed parameter access. All return 0 and set *ret (unchanged on failure); when the
 * parameter is absent or null: the default (and 0) if !required, else -EINVAL. -EINVAL
 * on a wrong type or a value out of range. */
int varlink_param_bool(struct json_object *params, const char *name, bool required, bool def, bool *ret);
/* Accepts a JSON integer >= 0, or a string parse_u64() takes ("0x..." or decimal). */
int varlink_param_u64(struct json_object *params, const char *name, bool required, uint64_t def, uint64_t *ret);
/* A JSON integer in [min, max]. */
int varlink_param_int(struct json_object *params, const char *name, bool required,
                      int64_t min, int64_t max, int64_t def, int64_t *ret);
/* A string; *ret points into params. */
int varlink_param_string(struct json_object *params, const char *name, bool required, const char **ret);

/* Finds a key of params that is not in the NULL-terminated list known: returns it, or NULL. */
const char *varlink_params_unknown(struct json_object *params, const char *const *known);

/* Checks that a Varlink interface or method name is well-formed (interface names: dotted
 * reverse-domain; method names: CamelCase identifier). */
bool varlink_interface_name_valid(const char *s);
bool varlink_method_name_valid(const char *s);
