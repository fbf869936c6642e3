#include "interface.h"

const char memmapd_interface_description[] =
#include "io.memmapd.varlink.inc"
        ;
