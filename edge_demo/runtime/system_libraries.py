"""Shared libraries that native wheels load and a minimal system may lack, named with the Debian package that
provides each: a Raspberry Pi OS Lite or a container gets one line saying what to install, not a traceback.

MediaPipe's aarch64 wheel loads EGL and GLES; MediaPipe depends on ``opencv-contrib-python``, a build with a
window system that shares the ``cv2`` folder with ``opencv-python-headless`` and loads GL and XCB.
"""

from __future__ import annotations

import importlib
import re

# library file -> Debian (and Raspberry Pi OS) package
PACKAGES = {
    "libEGL.so.1": "libegl1",
    "libGLESv2.so.2": "libgles2",
    "libGL.so.1": "libgl1",
    "libxcb.so.1": "libxcb1",
    "libX11.so.6": "libx11-6",
    "libXext.so.6": "libxext6",
    "libSM.so.6": "libsm6",
    "libICE.so.6": "libice6",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libgomp.so.1": "libgomp1",
}
_MISSING = re.compile(r"(lib[\w.+-]+?\.so(?:\.\d+)*): cannot open shared object file")


class SystemLibraryError(RuntimeError):
    """A system library a dependency needs is missing; the message names it and the package that provides it."""


def explain(what: str, err: BaseException) -> SystemLibraryError | None:
    """The one-line error for ``err`` if it is a missing shared library, else ``None``."""
    text = str(err)
    found = _MISSING.search(text)
    name = found.group(1) if found else next((lib for lib in PACKAGES if lib in text), None)
    if name is None:
        return None
    if name in PACKAGES:
        return SystemLibraryError(f"{what} needs {name}, which this system lacks: install it with `sudo apt-get install {PACKAGES[name]}`.")
    return SystemLibraryError(f"{what} needs {name}, which this system lacks (`apt-file search {name}` names its package).")


def import_native(module: str, what: str):
    """``importlib.import_module(module)``, or ``SystemLibraryError`` naming the missing library and its package."""
    try:
        return importlib.import_module(module)
    except (ImportError, OSError) as err:
        explained = explain(what, err)
        if explained is None:
            raise
        raise explained from err
