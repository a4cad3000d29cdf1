"""Build the C parts: the ``_native`` extension and the ``pidns-init`` program.

Everything else is in pyproject.toml. ``pidns-init`` is an executable, not an
extension module, so it is compiled with the same compiler next to the extension.
"""

from __future__ import annotations

import os

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

CFLAGS = ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"]


class BuildWithInit(build_ext):
    """build_ext that also links src/pidns/_kernel/init.c into pidns/_kernel/pidns-init."""

    def run(self) -> None:
        super().run()
        src = os.path.join("src", "pidns", "_kernel", "init.c")
        if self.inplace:
            out_dir = os.path.join("src", "pidns", "_kernel")
        else:
            out_dir = os.path.join(self.build_lib, "pidns", "_kernel")
        os.makedirs(out_dir, exist_ok=True)
        objs = self.compiler.compile([src], output_dir=self.build_temp, extra_postargs=CFLAGS)
        self.compiler.link_executable(objs, "pidns-init", output_dir=out_dir)

    def get_outputs(self) -> list[str]:
        outs = list(super().get_outputs())
        base = os.path.join("src" if self.inplace else self.build_lib, "pidns", "_kernel")
        outs.append(os.path.join(base, "pidns-init"))
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
