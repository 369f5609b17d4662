#!/usr/bin/env python
"""Migrate the lab's schema and create Optuna's tables once, before any other role starts.

The compose file's one-shot ``migrate`` service; the others wait for it to complete
(``service_completed_successfully``), so no two processes race to create the schema.
"""

from __future__ import annotations

import logging
import os
import sys

from studies.store import open_store


def main() -> int:
    """Create or upgrade the schema at ``VRADAM_LAB_DB_URL``; 0 on success."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    url = os.environ.get("VRADAM_LAB_DB_URL")
    if not url:
        logging.error("VRADAM_LAB_DB_URL is not set")
        return 2
    store = open_store(url)
    try:
        store.create_schema()
    finally:
        store.close()
    logging.info("schema up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
