"""Serves a built page on localhost with the MIME types and cross-origin-isolation headers it needs (``page.make_server``).

    python -m edge_demo.web.serve --directory site/        # http://localhost:8000/

A camera page must be a secure context: ``localhost`` is one; another host needs HTTPS in front of this server.
"""

from __future__ import annotations

from absl import flags

from edge_demo.runtime import cli
from edge_demo.web import page


def main(argv):
    del argv
    if not _DIRECTORY.value:
        cli.error("serve", "--directory is required (the folder python -m edge_demo.web.build wrote).")
        return cli.BAD_INPUT
    try:
        page.serve_forever(_DIRECTORY.value, _PORT.value, _HOST.value)
    except ValueError as err:
        cli.error("serve", err)
        return cli.BAD_INPUT
    return cli.OK


if __name__ == "__main__":  # the flags only then: build has --port too, and tests import every edge_demo module at once
    _DIRECTORY = flags.DEFINE_string("directory", None, "The built page (python -m edge_demo.web.build --output).")
    _PORT = flags.DEFINE_integer("port", 8000, "The port.", lower_bound=0, upper_bound=65535)
    _HOST = flags.DEFINE_string("host", "127.0.0.1", "The interface (a camera needs localhost or HTTPS).")
    cli.run(main)
