"""spark-submit entry point for the `report` job (thin: the logic lives in the wheel)."""

from shikong.jobs.report import main

if __name__ == "__main__":
    raise SystemExit(main())
