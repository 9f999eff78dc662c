"""spark-submit entry point for the `spatial_features` job (thin: the logic lives in the wheel)."""

from shikong.jobs.spatial_features import main

if __name__ == "__main__":
    raise SystemExit(main())
