"""Mock services of a run: SMS vendors in their own wire formats, the ledger and the alert sink."""
