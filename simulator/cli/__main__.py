"""``python -m semlink.cli``: the ``semlink`` command line (as ``python -m semlink``)."""
from semlink.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
