"""Builds the optional native tree routine; all other metadata is in pyproject.toml.

Without a C compiler the build skips the extension (``optional=True``) and
chaincity runs the Python tree writer instead. Where OpenSSL's headers and
library are found, the routine hashes through OpenSSL directly (about three
times faster than through hashlib objects); without them it still builds and
hashes through the suite.
"""

import os
import tempfile

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

_OPENSSL_PROBE = """
#include <openssl/evp.h>
int main(void) {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_MD_CTX_free(ctx);
    return 0;
}
"""


class BuildExt(build_ext):
    """Links the tree routine against OpenSSL's libcrypto where the machine has it."""

    def build_extensions(self) -> None:
        if self._have_openssl():
            for extension in self.extensions:
                extension.define_macros.append(("CHAINCITY_OPENSSL", "1"))
                extension.libraries.append("crypto")
        super().build_extensions()

    def _have_openssl(self) -> bool:
        with tempfile.TemporaryDirectory() as work:
            source = os.path.join(work, "probe.c")
            with open(source, "w") as out:
                out.write(_OPENSSL_PROBE)
            try:
                objects = self.compiler.compile([source], output_dir=work)
                self.compiler.link_executable(
                    objects, "probe", output_dir=work, libraries=["crypto"]
                )
            except Exception:  # any failure: no headers, no library, another compiler
                return False
        return True


setup(
    cmdclass={"build_ext": BuildExt},
    ext_modules=[
        Extension(
            "chaincity.state._treecore",
            ["src/chaincity/state/_treecore.c"],
            extra_compile_args=["-std=c99", "-O2", "-Wall", "-Wextra"],
            optional=True,
        )
    ],
)
