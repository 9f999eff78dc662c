"""spark-submit entry point for the `stream` job (thin: the logic lives in the wheel)."""

from shikong.jobs.stream import main

if __name__ == "__main__":
    raise SystemExit(main())
