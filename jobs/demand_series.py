"""spark-submit entry point for the `demand_series` job (thin: the logic lives in the wheel)."""

from shikong.jobs.demand_series import main

if __name__ == "__main__":
    raise SystemExit(main())
