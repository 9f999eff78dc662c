"""spark-submit entry point for the `evaluate_models` job (thin: the logic lives in the wheel)."""

from shikong.jobs.evaluate_models import main

if __name__ == "__main__":
    raise SystemExit(main())
