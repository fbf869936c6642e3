/* The org.varlink.service interface memmapd serves: its description, GetInfo and GetInterfaceDescription. */

#include <string.h>

#include "memmapd-codec.h"
#include "methods-internal.h"

const char varlink_service_interface_description[] =
        "# The Varlink service interface, provided by every Varlink service.\n"
        "interface org.varlink.service\n"
        "\n"
        "# Information about the service and the interfaces it implements.\n"
        "method GetInfo() -> (\n"
        "  vendor: string,\n"
        "  product: string,\n"
        "  version: string,\n"
        "  url: string,\n"
        "  interfaces: []string\n"
        ")\n"
        "\n"
        "# The description of an interface the service implements.\n"
        "method GetInterfaceDescription(interface: string) -> (description: string)\n"
        "\n"
        "# No such interface here.\n"
        "error InterfaceNotFound (interface: string)\n"
        "\n"
        "# No such method here.\n"
        "error MethodNotFound (method: string)\n"
        "\n"
        "# The interface has the method, but the service does not implement it.\n"
        "error MethodNotImplemented (method: string)\n"
        "\n"
        "# A parameter is missing, of the wrong type or out of range.\n"
        "error InvalidParameter (parameter: string)\n"
        "\n"
        "# The client may not call this.\n"
        "error PermissionDenied ()\n"
        "\n"
        "# The method must be called with \"more\" set.\n"
        "error ExpectedMore ()\n";

const char *get_info(const struct method_context *ctx, const struct varlink_call *call, struct json_writer *w) {
        static const char *const known[] = { NULL };
        const char *bad;

        if (!known_params_only(call->parameters, known, &bad))
                return reply_invalid_parameter(w, bad);

        varlink_reply_begin(w, NULL, false);
        json_writer_key(w, "vendor");
        json_writer_string(w, "memmapd");
        json_writer_key(w, "product");
        json_writer_string(w, "memmapd");
        json_writer_key(w, "version");
        json_writer_string(w, MEMMAPD_VERSION);
        json_writer_key(w, "url");
        json_writer_string(w, "");
        json_writer_key(w, "interfaces");
        json_writer_array_begin(w);
        json_writer_string(w, "org.varlink.service");
        json_writer_string(w, MEMMAPD_INTERFACE);
        json_writer_array_end(w);
        varlink_message_end(w);
        return NULL;
}

const char *get_interface_description(const struct method_context *ctx, const struct varlink_call *call,
                                             struct json_writer *w) {
        static const char *const known[] = { "interface", NULL };
        const char *iface, *desc, *bad;

        if (!known_params_only(call->parameters, known, &bad))
                return reply_invalid_parameter(w, bad);
        if (varlink_param_string(call->parameters, "interface", true, &iface) < 0)
                return reply_invalid_parameter(w, "interface");

        if (strcmp(iface, MEMMAPD_INTERFACE) == 0)
                desc = memmapd_interface_description;
        else if (strcmp(iface, "org.varlink.service") == 0)
                desc = varlink_service_interface_description;
        else
                return reply_error_simple(w, VARLINK_ERROR_INTERFACE_NOT_FOUND, "interface", iface);

        varlink_reply_begin(w, NULL, false);
        json_writer_key(w, "description");
        json_writer_string(w, desc);
        varlink_message_end(w);
        return NULL;
}

