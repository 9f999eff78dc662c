"""spark-submit entry point for `prepare_training_data` (thin: the logic lives in the wheel)."""

from shikong.jobs.prepare_training_data import main

if __name__ == "__main__":
    raise SystemExit(main())
