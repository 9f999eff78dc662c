"""spark-submit entry point for the `train_models` job (thin: the logic lives in the wheel)."""

from shikong.jobs.train_models import main

if __name__ == "__main__":
    raise SystemExit(main())
