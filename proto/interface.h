/* The io.memmapd Varlink interface description, embedded from proto/io.memmapd.varlink. */
#pragma once

#define MEMMAPD_INTERFACE "io.memmapd"

#define MEMMAPD_ERROR_NO_SUCH_PROCESS MEMMAPD_INTERFACE ".NoSuchProcess"
#define MEMMAPD_ERROR_PERMISSION_DENIED MEMMAPD_INTERFACE ".PermissionDenied"
#define MEMMAPD_ERROR_PROCESS_CHANGED MEMMAPD_INTERFACE ".ProcessChanged"
#define MEMMAPD_ERROR_LIMIT_EXCEEDED MEMMAPD_INTERFACE ".LimitExceeded"
#define MEMMAPD_ERROR_INTERNAL MEMMAPD_INTERFACE ".InternalError"

extern const char memmapd_interface_description[];
