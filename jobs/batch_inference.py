"""spark-submit entry point for the `batch_inference` job (thin: the logic lives in the wheel)."""

from shikong.jobs.batch_inference import main

if __name__ == "__main__":
    raise SystemExit(main())
