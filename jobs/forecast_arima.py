"""spark-submit entry point for the `forecast_arima` job (thin: the logic lives in the wheel)."""

from shikong.jobs.forecast_arima import main

if __name__ == "__main__":
    raise SystemExit(main())
