"""spark-submit entry point for the `inventory_policy` job (thin: the logic lives in the wheel)."""

from shikong.jobs.inventory_policy import main

if __name__ == "__main__":
    raise SystemExit(main())
