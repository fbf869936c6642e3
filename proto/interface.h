/* The io.memmapd Varlink interface description, embedded from proto/io.memmapd.varlink. */
#pragma once

#define MEMMAPD_INTERFACE "io.memmapd"

extern const char memmapd_interface_description[];
