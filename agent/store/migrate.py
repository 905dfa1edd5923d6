"""``python -m agent.store.migrate``: upgrade the store whose URL is read from stdin, then exit.

The resident agent runs this as a child when a migration is due, so it never imports Alembic
itself (see :func:`agent.store._database.upgrade_to_head`). Log lines go to stderr (the parent
passes them on); exit code 1 with the reason on the last line when the migration fails.
"""
from __future__ import annotations

import logging
import sys
import traceback

from agent.store._database import create_store_engine, upgrade_to_head


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic.runtime.migration").setLevel(logging.INFO)  # "Running upgrade 0001 -> 0002"
    engine = create_store_engine(sys.stdin.read().strip())
    try:
        upgrade_to_head(engine)
    except Exception as exc:  # noqa: BLE001 - any failure: its traceback and reason for the parent
        traceback.print_exc()
        print(f"{type(exc).__name__}: " + (str(exc).splitlines() or [""])[0], file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
