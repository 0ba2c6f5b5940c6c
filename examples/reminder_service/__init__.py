"""Reference SMS reminder notifier: follows the ledger's feed, sends each reminder when due."""
