"""What advertisers read of the ledger: their own transactions, searched and one by one."""
