"""`python -m tests.support.build_java`: builds tests/interop/java unless it is up to date.

Exit status: 0 built or up to date, 1 Maven failed, 3 java or mvn is not installed.
"""

import sys

from tests.support import java

EXIT_UNAVAILABLE = 3


def main() -> int:
    try:
        how = java.build()
    except java.JavaUnavailable as missing:
        print(f"tests/interop/java not built: {missing}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except java.JavaBuildError as failure:
        print(failure, file=sys.stderr)
        return 1
    print(f"tests/interop/java: {how} ({len(java.lib_jars())} jars in target/lib)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
