"""Build the C parts: the ``_native`` extension and the ``pidns-init`` and
``pidns-monitor`` programs.

Everything else is in pyproject.toml. The programs are executables, not extension
modules, so they are compiled with the same compiler next to the extension.
"""

from __future__ import annotations

import os

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

PROGRAMS = (("init.c", "pidns-init"), ("monitor.c", "pidns-monitor"))
CFLAGS = ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"]


class BuildWithInit(build_ext):
    """build_ext that also links the PROGRAMS (src/pidns/_kernel/*.c) into pidns/_kernel/."""

    def run(self) -> None:
        super().run()
        if self.inplace:
            out_dir = os.path.join("src", "pidns", "_kernel")
        else:
            out_dir = os.path.join(self.build_lib, "pidns", "_kernel")
        os.makedirs(out_dir, exist_ok=True)
        for source, program in PROGRAMS:
            src = os.path.join("src", "pidns", "_kernel", source)
            objs = self.compiler.compile([src], output_dir=self.build_temp,
                                         extra_postargs=CFLAGS)
            # Static: pidns-init is exec'd after pivot_root into any root file system
            # (a busybox one has no dynamic loader), so it must not need one.
            try:
                self.compiler.link_executable(objs, program, output_dir=out_dir,
                                              extra_postargs=["-static", "-s"])
            except Exception:  # noqa: BLE001 - no static libc: dynamic works outside --rootfs
                self.compiler.link_executable(objs, program, output_dir=out_dir)

    def get_outputs(self) -> list[str]:
        outs = list(super().get_outputs())
        base = os.path.join("src" if self.inplace else self.build_lib, "pidns", "_kernel")
        outs += [os.path.join(base, program) for _, program in PROGRAMS]
        return outs


setup(
    ext_modules=[
        Extension(
            "pidns._kernel._native",
            sources=["src/pidns/_kernel/_native.c"],
            depends=["src/pidns/_kernel/child.h"],
            extra_compile_args=CFLAGS,
        )
    ],
    cmdclass={"build_ext": BuildWithInit},
)
