"""Rewards: the pure rulebook, the ledger kept in step with clips, earnings, payouts."""
