/* The io.memmapd Varlink interface description, embedded from proto/io.memmapd.varlink. */

#include "interface.h"

const char memmapd_interface_description[] =
#include "io.memmapd.varlink.inc"
        ;
