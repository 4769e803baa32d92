"""``python -m semlink``: the ``semlink`` command line."""
from semlink.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
