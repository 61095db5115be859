"""``python -m kraft``: a single-node server on localhost:9092 with a default data directory.

It uses ``config/server.properties`` from the source tree with ``log.dirs`` pointed at
``.kraft-data`` in the current directory (``KRAFT_DATA_DIR`` overrides it), and formats
that directory as a standalone quorum the first time, so one command gives a working
server. Extra ``key=value`` arguments override properties.
"""

from __future__ import annotations

import os
import sys

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                              "config", "server.properties")


def main(argv: list[str] | None = None) -> int:
    from tools.common import ToolError

    try:
        return _start(sys.argv[1:] if argv is None else argv)
    except ToolError as error:
        print(error, file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130


def _start(argv: list[str]) -> int:
    from kraft import meta_properties as meta
    from tools.common import parse_key_values
    from tools.server_start import configure_logging, load_server_config, run_node
    from tools.storage_tool import format_storage

    if any(arg in ("-h", "--help") for arg in argv) or any("=" not in arg for arg in argv):
        print(__doc__.strip() + "\n\nusage: python -m kraft [key=value ...]", file=sys.stderr)
        return 0 if any(arg in ("-h", "--help") for arg in argv) else 2
    data_dir = os.path.abspath(os.environ.get("KRAFT_DATA_DIR", ".kraft-data"))
    overrides = {"log.dirs": data_dir, **parse_key_values(argv)}
    configure_logging()
    config = load_server_config(DEFAULT_CONFIG, overrides)
    if meta.read_meta_properties(config.metadata_log_dir) is None:
        properties_path = os.path.join(data_dir, "server.properties")
        os.makedirs(data_dir, exist_ok=True)
        with open(DEFAULT_CONFIG, encoding="utf-8") as source:
            text = source.read()
        with open(properties_path, "w", encoding="utf-8") as target:
            target.write(text + "".join(f"\n{k}={v}" for k, v in overrides.items()) + "\n")
        format_storage(properties_path, meta.random_uuid(), standalone=True)
    return run_node(config)


if __name__ == "__main__":
    sys.exit(main())
