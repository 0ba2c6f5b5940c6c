"""Reference SMS reminder notifier: pulls due reminders from the ledger, sends them by SMS."""
