"""spark-submit entry point for the `policy_fusion` job (thin: the logic lives in the wheel)."""

from shikong.jobs.policy_fusion import main

if __name__ == "__main__":
    raise SystemExit(main())
