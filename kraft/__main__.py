"""``python -m kraft``: a single-node server on localhost:9092 with a default data directory.

It uses ``config/server.properties`` from the source tree with ``log.dirs`` pointed at
``.kraft-data`` in the current directory (``KRAFT_DATA_DIR`` overrides it), and formats
that directory as a standalone quorum the first time, so one command gives a working
server. Extra ``key=value`` arguments override properties.
"""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    from kraft.server.process import ServerError, run_default_node

    argv = sys.argv[1:] if argv is None else argv
    if any(arg in ("-h", "--help") for arg in argv) or any("=" not in arg for arg in argv):
        print(__doc__.strip() + "\n\nusage: python -m kraft [key=value ...]", file=sys.stderr)
        return 0 if any(arg in ("-h", "--help") for arg in argv) else 2
    overrides = dict(arg.split("=", 1) for arg in argv)
    try:
        return run_default_node(overrides)
    except ServerError as error:
        print(error, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as error:  # a bug: one line, the traceback with KRAFT_LOG_LEVEL=DEBUG
        from kraft.server.process import report_unexpected_error

        return report_unexpected_error("python -m kraft", error)


if __name__ == "__main__":
    sys.exit(main())
