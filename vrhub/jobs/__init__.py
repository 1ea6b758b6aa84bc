"""Avatar build jobs: rows in the database, run by a local process pool or by arq workers."""
