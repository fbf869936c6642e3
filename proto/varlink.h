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
        /* What an interface's own decoder (e.g. memmapd_call_parse()) took out of parameters and
         * decoded itself; varlink_call_done() frees it with decoded_free. NULL: nothing. */
        void *decoded;
        void (*decoded_free)(void *decoded);
};

/* Decodes one message (msg[len] must be NUL; a NUL inside msg is invalid). Returns 0;
 * -EBADMSG when it is not JSON, not an object, nests deeper than max_depth, or "method" is
 * missing or not a string of the form interface.Method; -EINVAL with *ret_bad_field set
 * ("parameters", "more", "oneway", "upgrade") when a known field has the wrong type.
 * Unknown top-level fields are ignored, as the Varlink spec asks.
 * Details: the JSON is parsed strictly (json-c's JSON_TOKENER_STRICT: no comments, single
 * quotes, trailing commas or leading zeros; input must be UTF-8; nothing but whitespace may
 * follow the object). max_depth counts levels as json-c does: the message object is level 1,
 * its members (the parameters object) level 2, their members level 3...; 0 means
 * VARLINK_JSON_DEPTH_DEFAULT, values above 1024 are taken as 1024. An integer literal outside
 * [INT64_MIN, UINT64_MAX] (json-c would silently clamp it) is decoded as a double: it is valid
 * JSON, and no integer parameter takes it, so the call gets InvalidParameter naming it, not a
 * closed connection. "parameters" absent or null gives {}; "more"/"oneway"/"upgrade" absent or null are
 * false (Varlink treats null like an omitted optional field). A string with an embedded
 * \u0000 is never a valid method. *ret is untouched on failure (then call nothing on it);
 * ret_bad_field may be NULL and is only written on -EINVAL. -ENOMEM is possible.
 */
int varlink_call_parse(const char *msg, size_t len, unsigned max_depth,
                       struct varlink_call *ret, const char **ret_bad_field);
void varlink_call_done(struct varlink_call *c);

struct varlink_reply {
        char *error;                    /* NULL on success */
        struct json_object *parameters; /* always an object */
        bool continues;
};

/* Decodes a reply, as varlink_call_parse() does a call: -EBADMSG for what is not a JSON
 * object (same rules, but an integer literal outside the 64-bit ranges is -EBADMSG), or an "error" string that is not of the form interface.ErrorName;
 * -EINVAL when "error" is not a string, "parameters" not an object or "continues" not a
 * boolean (null counts as absent for all three). */
int varlink_reply_parse(const char *msg, size_t len, unsigned max_depth, struct varlink_reply *ret);
void varlink_reply_done(struct varlink_reply *r);

/* Starts a call: writes {"method":METHOD[,"more":true][,"oneway":true],"parameters":{
 * and leaves the writer inside the parameters object; end with varlink_message_end().
 * A NULL or malformed method puts the writer in its -EINVAL error state. */
void varlink_call_begin(struct json_writer *w, const char *method, bool more, bool oneway);

/* Starts a reply: {["error":ERROR,]["continues":true,]"parameters":{ (error may be NULL; a
 * malformed error name puts the writer in its -EINVAL error state). */
void varlink_reply_begin(struct json_writer *w, const char *error, bool continues);

/* Closes the parameters object and the message, and appends the NUL terminator. */
void varlink_message_end(struct json_writer *w);

/* A whole InvalidParameter error reply (terminated): its parameters are {"parameter": name},
 * or {} when name is NULL. */
void varlink_reply_invalid_parameter(struct json_writer *w, const char *name);

/* Typed parameter access. All return 0 and set *ret (unchanged on failure); when the
 * parameter is absent or null: the default (and 0) if !required, else -EINVAL. -EINVAL
 * on a wrong type or a value out of range, and when params is NULL or not an object.
 * Strings with an embedded \u0000 are -EINVAL wherever a string is read. */
int varlink_param_bool(struct json_object *params, const char *name, bool required, bool def, bool *ret);
/* Accepts a JSON integer >= 0, or a string parse_u64() takes ("0x..." or decimal); not
 * doubles (1.0, 1e3), booleans or anything else. */
int varlink_param_u64(struct json_object *params, const char *name, bool required, uint64_t def, uint64_t *ret);
/* The same rule for a value on its own (an array element): 0, or -EINVAL. */
int varlink_json_u64(struct json_object *v, uint64_t *ret);
/* A JSON integer in [min, max] (not a string, not a double). */
int varlink_param_int(struct json_object *params, const char *name, bool required,
                      int64_t min, int64_t max, int64_t def, int64_t *ret);
/* A string; *ret points into params (NULL when absent and not required). */
int varlink_param_string(struct json_object *params, const char *name, bool required, const char **ret);

/* Finds a key of params that is not in the NULL-terminated list known: returns it, or NULL
 * (also when params is not an object; known == NULL means no key is known). */
const char *varlink_params_unknown(struct json_object *params, const char *const *known);

/* Checks that a Varlink interface or method name is well-formed (interface names: dotted
 * reverse-domain; method names: CamelCase identifier). Interface names follow the Varlink
 * grammar [A-Za-z]([-]*[A-Za-z0-9])*([.][A-Za-z0-9]([-]*[A-Za-z0-9])*)+ : at least two
 * segments, no segment ending in '-'. Method (and error) names: [A-Z][A-Za-z0-9]*. Each is
 * at most 255 characters. NULL is invalid. */
bool varlink_interface_name_valid(const char *s);
bool varlink_method_name_valid(const char *s);
