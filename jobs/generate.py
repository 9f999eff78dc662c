"""spark-submit entry point for the `generate` job (thin: the logic lives in the wheel)."""

from shikong.jobs.generate import main

if __name__ == "__main__":
    raise SystemExit(main())
