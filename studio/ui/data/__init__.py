"""The Data tab: datasets the studio writes — preference pairs from runs, reviewed and versioned."""
