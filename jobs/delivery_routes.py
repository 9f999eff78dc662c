"""spark-submit entry point for the `delivery_routes` job (thin: the logic lives in the wheel)."""

from shikong.jobs.delivery_routes import main

if __name__ == "__main__":
    raise SystemExit(main())
