"""The only place for ctypes, ioctls and raw syscalls.

Functions here return ints/fds and raise ``OSError`` only; they never format messages.
The C parts (``_native``: the clone-straight-to-exec spawner, pivot_root, clone3;
``pidns-init``: the PID-1 program) are built with the package.
"""
