"""A reference notifier under test, and its deliberately flawed variants (DEFECT)."""
