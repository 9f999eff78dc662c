"""spark-submit entry point for the `ingest` job (thin: the logic lives in the wheel)."""

from shikong.jobs.ingest import main

if __name__ == "__main__":
    raise SystemExit(main())
