/* A library of the retention fixture's own: dlopen()ed by it, so that a short-lived process maps a file no other process does. */

int retain_lib_function(int x);

int retain_lib_function(int x) {
        return x * 3 + 1;
}
