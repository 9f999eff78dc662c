"""Landing -> bronze: reading raw files, validation, quarantine, reconciliation."""
